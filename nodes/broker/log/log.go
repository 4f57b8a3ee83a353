package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SyncPolicy says when appended bytes are forced to disk.
type SyncPolicy int

const (
	// SyncNone leaves flushing to the caller's Sync (a periodic flusher) and
	// to segment roll and Close; replication is what makes acks durable, as
	// in Kafka's default.
	SyncNone SyncPolicy = iota
	// SyncEveryAppend fsyncs before Append returns.
	SyncEveryAppend
)

// ParseSyncPolicy reads "none" or "always".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "none", "interval":
		return SyncNone, nil
	case "always":
		return SyncEveryAppend, nil
	}
	return 0, fmt.Errorf("unknown fsync policy %q (want always or none)", s)
}

// Option configures a Log.
type Option func(*Log)

// SegmentBytes rolls a new segment once the active one holds n bytes.
func SegmentBytes(n int64) Option { return func(l *Log) { l.segmentBytes = n } }

// IndexInterval adds an index entry every n bytes of records.
func IndexInterval(n int64) Option { return func(l *Log) { l.indexInterval = n } }

// Sync sets the fsync policy.
func Sync(p SyncPolicy) Option { return func(l *Log) { l.sync = p } }

// Log is a partition's log. It is safe for concurrent use: one appender at a
// time, readers in parallel.
type Log struct {
	dir           string
	segmentBytes  int64
	indexInterval int64
	sync          SyncPolicy

	mu       sync.RWMutex
	segments []*segment // ascending base offsets; the last is active
	epochs   epochCache
	buf      []byte
}

const (
	logSuffix   = ".log"
	indexSuffix = ".index"
	indexEntry  = 8 // relative offset u32 | position u32
)

// Open opens (or creates) the log in dir, recovering the active segment.
func Open(dir string, opts ...Option) (*Log, error) {
	l := &Log{dir: dir, segmentBytes: 64 << 20, indexInterval: 4096}
	for _, o := range opts {
		o(l)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	bases, err := listBases(dir)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	if len(bases) == 0 {
		bases = []int64{0}
	}
	for i, base := range bases {
		s, err := openSegment(dir, base, i == len(bases)-1, l.indexInterval)
		if err != nil {
			_ = l.closeSegments()
			return nil, fmt.Errorf("open log %s: %w", dir, err)
		}
		l.segments = append(l.segments, s)
	}
	l.epochs, err = loadEpochs(filepath.Join(dir, "epochs"), l.endLocked())
	if err != nil {
		_ = l.closeSegments()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

func listBases(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), logSuffix)
		if !ok {
			continue
		}
		b, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			continue // not ours
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// StartOffset is the first offset held.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segments[0].base
}

// EndOffset is the log end offset: the offset the next record gets.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.endLocked()
}

func (l *Log) endLocked() int64 { return l.segments[len(l.segments)-1].next }

// Append assigns offsets from the end of the log to recs (stamped with epoch
// and, where zero, the current time) and writes them. It returns the offset
// of the first and last record.
func (l *Log) Append(epoch int32, recs []Record) (first, last int64, err error) {
	if len(recs) == 0 {
		return 0, 0, errors.New("append: no records")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now().UnixNano()
	next := l.endLocked()
	for i := range recs {
		recs[i].Offset = next + int64(i)
		recs[i].Epoch = epoch
		if recs[i].Timestamp == 0 {
			recs[i].Timestamp = now
		}
	}
	if err := l.appendLocked(recs); err != nil {
		return 0, 0, err
	}
	return next, next + int64(len(recs)) - 1, nil
}

// AppendReplicated writes records that already carry offsets and epochs (a
// follower copying its leader). The first must be at the end of the log.
func (l *Log) AppendReplicated(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.endLocked()
	for i, r := range recs {
		if r.Offset != next+int64(i) {
			return fmt.Errorf("append replicated: offset %d, want %d", r.Offset, next+int64(i))
		}
	}
	return l.appendLocked(recs)
}

func (l *Log) appendLocked(recs []Record) error {
	for i, r := range recs {
		if EncodedSize(r) > MaxRecordSize {
			return fmt.Errorf("append: record %d is %d bytes, max %d", i, EncodedSize(r), MaxRecordSize)
		}
		if r.Epoch < l.epochs.last() {
			return fmt.Errorf("append: epoch %d below the log's %d", r.Epoch, l.epochs.last())
		}
		if r.Epoch > l.epochs.last() {
			// The cache entry is written before the records so that a crash
			// leaves an entry past the end (dropped on open), never records
			// without their epoch.
			if err := l.epochs.add(r.Epoch, r.Offset); err != nil {
				return fmt.Errorf("append: %w", err)
			}
		}
	}
	active := l.segments[len(l.segments)-1]
	if active.size >= l.segmentBytes {
		if err := l.rollLocked(); err != nil {
			return err
		}
		active = l.segments[len(l.segments)-1]
	}
	l.buf = l.buf[:0]
	for _, r := range recs {
		pos := active.size + int64(len(l.buf))
		if pos-active.lastIndexed >= l.indexInterval || len(active.index) == 0 {
			active.addIndex(r.Offset, pos)
		}
		l.buf = AppendRecord(l.buf, r)
	}
	if _, err := active.f.WriteAt(l.buf, active.size); err != nil {
		return fmt.Errorf("append to %s: %w", active.f.Name(), err)
	}
	active.size += int64(len(l.buf))
	active.next = recs[len(recs)-1].Offset + 1
	if l.sync == SyncEveryAppend {
		if err := active.f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", active.f.Name(), err)
		}
	}
	return nil
}

func (l *Log) rollLocked() error {
	old := l.segments[len(l.segments)-1]
	if err := old.seal(); err != nil {
		return err
	}
	s, err := openSegment(l.dir, old.next, true, l.indexInterval)
	if err != nil {
		return fmt.Errorf("roll: %w", err)
	}
	l.segments = append(l.segments, s)
	return nil
}

// Read returns the bytes of whole records from offset on, stopping before
// offset upTo (a consumer's high watermark) and after about maxBytes. The
// first record is returned even if it is larger than maxBytes, so a reader
// always makes progress. Reading at the end returns no bytes.
func (l *Log) Read(offset int64, maxBytes int, upTo int64) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	end := min(upTo, l.endLocked())
	if offset < l.segments[0].base || offset > l.endLocked() {
		return nil, fmt.Errorf("read offset %d: %w", offset, ErrOutOfRange)
	}
	if offset >= end {
		return nil, nil
	}
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset }) - 1
	var out []byte
	for ; i < len(l.segments) && offset < end; i++ {
		s := l.segments[i]
		pos, err := s.find(offset)
		if err != nil {
			return nil, err
		}
		n := min(int64(maxBytes-len(out)), s.size-pos)
		if len(out) == 0 && pos < s.size {
			hdr := make([]byte, 4)
			if _, err := s.f.ReadAt(hdr, pos); err != nil {
				return nil, fmt.Errorf("read %s: %w", s.f.Name(), err)
			}
			n = max(n, 4+int64(binary.BigEndian.Uint32(hdr)))
		}
		if n <= 0 {
			break
		}
		chunk := make([]byte, n)
		if _, err := s.f.ReadAt(chunk, pos); err != nil {
			return nil, fmt.Errorf("read %s: %w", s.f.Name(), err)
		}
		// Offsets are dense within a segment, so counting frames tracks the
		// offset for the high watermark cut.
		k := 0
		for offset < end && len(chunk)-k >= 4 {
			size := 4 + int(binary.BigEndian.Uint32(chunk[k:]))
			if k+size > len(chunk) {
				break
			}
			k += size
			offset++
		}
		out = append(out, chunk[:k]...)
		if pos+int64(k) < s.size {
			break // budget or high watermark reached inside this segment
		}
	}
	return out, nil
}

// ErrOutOfRange means a read asked for an offset the log does not hold.
var ErrOutOfRange = errors.New("offset out of range")

// Truncate removes every record at or after offset (a follower dropping a
// diverged tail).
func (l *Log) Truncate(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if offset >= l.endLocked() {
		return nil
	}
	if offset < l.segments[0].base {
		offset = l.segments[0].base
	}
	for len(l.segments) > 1 && l.segments[len(l.segments)-1].base >= offset {
		s := l.segments[len(l.segments)-1]
		l.segments = l.segments[:len(l.segments)-1]
		if err := s.remove(); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
	}
	s := l.segments[len(l.segments)-1]
	pos, err := s.find(offset)
	if err != nil {
		return err
	}
	if err := s.truncate(offset, pos); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	if err := l.epochs.truncate(offset); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return nil
}

// LastEpoch is the epoch of the last appended record (-1 for none).
func (l *Log) LastEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.last()
}

// EpochEnd answers "where does epoch end in this log": the largest epoch
// held that is <= epoch, and the offset just after its last record (the
// start of the next epoch, or the log end). With no such epoch it returns
// -1 and the log start.
func (l *Log) EpochEnd(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.end(epoch, l.segments[0].base, l.endLocked())
}

// Sync forces appended bytes to disk.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.segments[len(l.segments)-1]
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.f.Name(), err)
	}
	return nil
}

// Close syncs and closes the segment files.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.segments[len(l.segments)-1].f.Sync()
	return errors.Join(err, l.closeSegments())
}

func (l *Log) closeSegments() error {
	var errs []error
	for _, s := range l.segments {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

// Segments is the number of segment files, for tests and metrics.
func (l *Log) Segments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segments)
}

var _ io.Closer = (*Log)(nil)
