package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
)

// epochCache maps each leader epoch in the log to its first offset, so a
// follower can find where its log diverges from a new leader's (Kafka's
// KIP-101) instead of trusting a high watermark it may not have seen.
type epochCache struct {
	path    string
	entries []epochEntry // ascending epoch and start
}

type epochEntry struct {
	epoch int32
	start int64
}

func loadEpochs(path string, end int64) (epochCache, error) {
	c := epochCache{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e epochEntry
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &e.epoch, &e.start); err != nil {
			break // a torn last line
		}
		if e.start >= end {
			break // written ahead of records a crash lost
		}
		if n := len(c.entries); n > 0 && (e.epoch <= c.entries[n-1].epoch || e.start < c.entries[n-1].start) {
			return c, fmt.Errorf("epoch cache %s: entries out of order", path)
		}
		c.entries = append(c.entries, e)
	}
	return c, nil
}

func (c *epochCache) last() int32 {
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].epoch
}

func (c *epochCache) add(epoch int32, start int64) error {
	if n := len(c.entries); n > 0 && c.entries[n-1].start == start {
		c.entries = c.entries[:n-1] // an epoch that got no records
	}
	c.entries = append(c.entries, epochEntry{epoch, start})
	return c.persist()
}

func (c *epochCache) truncate(end int64) error {
	i := len(c.entries)
	for i > 0 && c.entries[i-1].start >= end {
		i--
	}
	if i == len(c.entries) {
		return nil
	}
	c.entries = c.entries[:i]
	return c.persist()
}

func (c *epochCache) end(epoch int32, logStart, logEnd int64) (int32, int64) {
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].epoch <= epoch {
			if i+1 < len(c.entries) {
				return c.entries[i].epoch, c.entries[i+1].start
			}
			return c.entries[i].epoch, logEnd
		}
	}
	return -1, logStart
}

// persist rewrites the file atomically: epochs change only on leader
// changes, so this is rare.
func (c *epochCache) persist() error {
	var b bytes.Buffer
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	tmp := c.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("epoch cache: %w", err)
	}
	_, werr := f.Write(b.Bytes())
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("epoch cache: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("epoch cache: %w", err)
	}
	return nil
}
