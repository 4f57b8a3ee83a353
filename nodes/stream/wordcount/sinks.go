package wordcount

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// CountWriter takes the latest count of every word that changed since the
// last call. Writes must be idempotent upserts: after a failure the sink
// writes counts again, possibly older ones first; its last write of a word
// is always the final count.
type CountWriter interface {
	WriteCounts(ctx context.Context, counts map[string]int64) error
}

// Console prints the counts that changed, a line per write, as Storm's
// print bolt does: `wordcount: apple=120 cow=240`.
type Console struct {
	W   io.Writer
	Now func() time.Time // stamps each line; nil: no stamp
}

// WriteCounts prints one line.
func (c Console) WriteCounts(_ context.Context, counts map[string]int64) error {
	var b strings.Builder
	if c.Now != nil {
		b.WriteString(c.Now().UTC().Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.WriteString("wordcount:")
	for _, w := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, " %s=%d", w, counts[w])
	}
	b.WriteByte('\n')
	_, err := io.WriteString(c.W, b.String())
	return err
}

// DBKeyPrefix is where the db sink keeps the counts: one key per word.
const DBKeyPrefix = "wordcount/"

// DB writes the counts into the replicated db, a key per word, in one
// atomic batch per write.
type DB struct{ Nodes *dbclient.Multi }

// WriteCounts upserts every count.
func (d DB) WriteCounts(ctx context.Context, counts map[string]int64) error {
	ops := make([]dbclient.Op, 0, len(counts))
	for _, w := range slices.Sorted(maps.Keys(counts)) {
		ops = append(ops, dbclient.Op{Op: dbclient.OpPut, Key: DBKeyPrefix + w, Value: strconv.FormatInt(counts[w], 10)})
	}
	return d.Nodes.Do(ctx, func(ctx context.Context, c *dbclient.Client) error {
		_, err := c.Batch(ctx, ops)
		return err
	})
}
