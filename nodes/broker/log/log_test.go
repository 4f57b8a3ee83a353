package log

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func recs(n int, prefix string) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	return out
}

func readAll(t *testing.T, l *Log, from int64) []Record {
	t.Helper()
	b, err := l.Read(from, 1<<30, l.EndOffset())
	require.NoError(t, err)
	out, err := DecodeAll(b)
	require.NoError(t, err)
	return out
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{},
		{Offset: 7, Epoch: 3, Timestamp: 99, Key: []byte("k"), Value: []byte("v")},
		{Offset: 1 << 40, Value: make([]byte, 1000)},
	} {
		b := AppendRecord(nil, r)
		require.Len(t, b, EncodedSize(r))
		got, n, err := DecodeRecord(b)
		require.NoError(t, err)
		assert.Equal(t, len(b), n)
		assert.Equal(t, r.Offset, got.Offset)
		assert.Equal(t, r.Epoch, got.Epoch)
		assert.Equal(t, string(r.Key), string(got.Key))
		assert.Equal(t, string(r.Value), string(got.Value))

		_, _, err = DecodeRecord(b[:len(b)-1])
		assert.ErrorIs(t, err, ErrShort)
		bad := append([]byte(nil), b...)
		bad[len(bad)-1] ^= 0xff
		_, _, err = DecodeRecord(bad)
		assert.ErrorIs(t, err, ErrCorrupt)
	}
}

func TestAppendReadAcrossSegments(t *testing.T) {
	tests := []struct {
		name     string
		segment  int64
		interval int64
		n        int
	}{
		{"one segment", 1 << 20, 4096, 100},
		{"many segments", 300, 64, 100},
		{"index every record", 1000, 1, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, SegmentBytes(tt.segment), IndexInterval(tt.interval))
			require.NoError(t, err)
			for i := 0; i < tt.n; i += 10 {
				first, last, err := l.Append(1, recs(10, fmt.Sprint(i)))
				require.NoError(t, err)
				assert.Equal(t, int64(i), first)
				assert.Equal(t, int64(i+9), last)
			}
			require.Equal(t, int64(tt.n), l.EndOffset())
			for _, from := range []int64{0, 1, 13, int64(tt.n - 1)} {
				got := readAll(t, l, from)
				require.Len(t, got, tt.n-int(from))
				for i, r := range got {
					require.Equal(t, from+int64(i), r.Offset)
				}
			}
			// the high watermark bounds what a read returns
			b, err := l.Read(5, 1<<20, 8)
			require.NoError(t, err)
			got, err := DecodeAll(b)
			require.NoError(t, err)
			require.Len(t, got, 3)
			// max bytes bounds it too, but never below one record
			b, err = l.Read(0, 1, int64(tt.n))
			require.NoError(t, err)
			got, err = DecodeAll(b)
			require.NoError(t, err)
			require.Len(t, got, 1)
			_, err = l.Read(int64(tt.n+1), 100, int64(tt.n+5))
			require.ErrorIs(t, err, ErrOutOfRange)

			require.NoError(t, l.Close())
			l, err = Open(dir, SegmentBytes(tt.segment), IndexInterval(tt.interval))
			require.NoError(t, err)
			defer l.Close()
			assert.Equal(t, int64(tt.n), l.EndOffset())
			assert.Len(t, readAll(t, l, 0), tt.n)
			if tt.segment < 1000 {
				assert.Greater(t, l.Segments(), 3)
			}
		})
	}
}

func TestRecoveryCutsTornTail(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string, size int64)
		wantEnd int64
	}{
		{"half a record", func(t *testing.T, path string, size int64) {
			require.NoError(t, os.Truncate(path, size-5))
		}, 19},
		{"garbage appended", func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.Write([]byte{0, 0, 0, 40, 1, 2, 3})
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, 20},
		{"flipped byte in the last record", func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte{0xee}, size-2)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir)
			require.NoError(t, err)
			_, _, err = l.Append(1, recs(20, "x"))
			require.NoError(t, err)
			require.NoError(t, l.Close())
			path := segmentPath(dir, 0, logSuffix)
			st, err := os.Stat(path)
			require.NoError(t, err)
			tt.damage(t, path, st.Size())

			l, err = Open(dir)
			require.NoError(t, err)
			defer l.Close()
			assert.Equal(t, tt.wantEnd, l.EndOffset())
			assert.Len(t, readAll(t, l, 0), int(tt.wantEnd))
			// appends continue after the cut
			first, _, err := l.Append(1, recs(1, "y"))
			require.NoError(t, err)
			assert.Equal(t, tt.wantEnd, first)
			assert.Len(t, readAll(t, l, 0), int(tt.wantEnd)+1)
		})
	}
}

func TestTruncateAndEpochs(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, SegmentBytes(200))
	require.NoError(t, err)
	_, _, err = l.Append(1, recs(10, "a")) // 0..9 epoch 1
	require.NoError(t, err)
	_, _, err = l.Append(3, recs(10, "b")) // 10..19 epoch 3
	require.NoError(t, err)

	tests := []struct {
		ask       int32
		wantEpoch int32
		wantEnd   int64
	}{{0, -1, 0}, {1, 1, 10}, {2, 1, 10}, {3, 3, 20}, {9, 3, 20}}
	for _, tt := range tests {
		e, end := l.EpochEnd(tt.ask)
		assert.Equal(t, tt.wantEpoch, e, "epoch for %d", tt.ask)
		assert.Equal(t, tt.wantEnd, end, "end for %d", tt.ask)
	}

	require.NoError(t, l.Truncate(12))
	assert.Equal(t, int64(12), l.EndOffset())
	require.NoError(t, l.Truncate(8))
	assert.Equal(t, int32(1), l.LastEpoch())
	_, end := l.EpochEnd(3)
	assert.Equal(t, int64(8), end)
	require.Error(t, l.AppendReplicated([]Record{{Offset: 9, Epoch: 4}}), "gap")
	require.NoError(t, l.AppendReplicated([]Record{{Offset: 8, Epoch: 4, Value: []byte("c")}}))
	_, _, err = l.Append(2, recs(1, "old"))
	require.Error(t, err, "an epoch below the last one is refused")
	require.NoError(t, l.Close())

	l, err = Open(dir, SegmentBytes(200))
	require.NoError(t, err)
	defer l.Close()
	got := readAll(t, l, 0)
	require.Len(t, got, 9)
	assert.Equal(t, "c", string(got[8].Value))
	assert.Equal(t, int32(4), l.LastEpoch())
	e, end := l.EpochEnd(3)
	assert.Equal(t, int32(1), e)
	assert.Equal(t, int64(8), end)
}

func TestEpochCacheEntryAheadOfRecordsIsDropped(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	require.NoError(t, err)
	_, _, err = l.Append(1, recs(3, "a"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	// a crash after the cache write but before the records reached disk
	f, err := os.OpenFile(filepath.Join(dir, "epochs"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("5 3\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	l, err = Open(dir)
	require.NoError(t, err)
	defer l.Close()
	assert.Equal(t, int32(1), l.LastEpoch())
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, Record{Offset: 1, Epoch: 2, Key: []byte("k"), Value: []byte("v")}))
	f.Add([]byte{0, 0, 0, 28})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := DecodeRecord(b)
		if err != nil {
			return
		}
		require.LessOrEqual(t, n, len(b))
		again := AppendRecord(nil, r)
		require.Equal(t, b[:n], again, "a decoded record re-encodes to the same bytes")
		_, err = DecodeAll(b)
		_ = err // must not panic on any input
	})
}

func BenchmarkAppend100B(b *testing.B) {
	l, err := Open(b.TempDir())
	require.NoError(b, err)
	defer l.Close()
	batch := make([]Record, 100)
	for i := range batch {
		batch[i].Value = make([]byte, 100)
	}
	b.SetBytes(100 * 100)
	for b.Loop() {
		if _, _, err := l.Append(1, batch); err != nil {
			b.Fatal(err)
		}
	}
}
