package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// segment is one .log file of records from base on, with its sparse index
// held in memory and mirrored to the .index file.
type segment struct {
	base        int64
	next        int64 // offset after the last record
	size        int64
	f           *os.File
	idx         *os.File
	index       []indexEntryT
	lastIndexed int64
	interval    int64
}

type indexEntryT struct {
	offset int64
	pos    int64
}

func segmentPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// openSegment opens a segment. The active one is scanned and cut at the
// first torn or corrupt record, and its index rebuilt; sealed ones were
// synced at roll and trust their index.
func openSegment(dir string, base int64, active bool, interval int64) (*segment, error) {
	f, err := os.OpenFile(segmentPath(dir, base, logSuffix), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	idx, err := os.OpenFile(segmentPath(dir, base, indexSuffix), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	s := &segment{base: base, next: base, f: f, idx: idx, interval: interval, lastIndexed: -interval}
	if err := s.load(active); err != nil {
		_ = s.close()
		return nil, fmt.Errorf("segment %d: %w", base, err)
	}
	return s, nil
}

func (s *segment) load(active bool) error {
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	s.size = st.Size()
	if !active {
		if ok, err := s.loadIndex(); err != nil || ok {
			return err
		}
	}
	return s.recover()
}

// loadIndex reads a sealed segment's index and finds its end from the last
// entry. It reports false when the index is unusable and a scan is needed.
func (s *segment) loadIndex() (bool, error) {
	b, err := os.ReadFile(s.idx.Name())
	if err != nil {
		return false, err
	}
	if len(b) == 0 || len(b)%indexEntry != 0 {
		return false, nil
	}
	for i := 0; i < len(b); i += indexEntry {
		s.index = append(s.index, indexEntryT{
			offset: s.base + int64(binary.BigEndian.Uint32(b[i:])),
			pos:    int64(binary.BigEndian.Uint32(b[i+4:])),
		})
	}
	last := s.index[len(s.index)-1]
	s.lastIndexed = last.pos
	next, pos, err := s.scan(last.offset, last.pos, false)
	if err != nil || pos != s.size {
		s.index = nil
		return false, err
	}
	s.next = next
	return true, nil
}

// recover scans the whole segment, rebuilds the index and cuts the file
// after the last whole, valid, contiguous record.
func (s *segment) recover() error {
	s.index = nil
	s.lastIndexed = -s.interval
	next, pos, err := s.scan(s.base, 0, true)
	if err != nil {
		return err
	}
	s.next = next
	if pos < s.size {
		if err := s.f.Truncate(pos); err != nil {
			return fmt.Errorf("cut torn tail at %d: %w", pos, err)
		}
		s.size = pos
	}
	return s.writeIndex()
}

// scan walks records from (offset, pos) and returns the next offset and the
// position after the last good record.
func (s *segment) scan(offset, pos int64, index bool) (int64, int64, error) {
	buf := make([]byte, 1<<20)
	for {
		n := min(int64(len(buf)), s.size-pos)
		if _, err := s.f.ReadAt(buf[:n], pos); err != nil {
			return 0, 0, err
		}
		more := pos+n < s.size
		k := 0
		for {
			r, m, err := DecodeRecord(buf[k:n])
			if errors.Is(err, ErrShort) && more {
				if k == 0 {
					buf = make([]byte, 2*len(buf)) // a record larger than the buffer
				}
				break // re-read from this record
			}
			if err != nil || r.Offset != offset {
				return offset, pos + int64(k), nil
			}
			if index && (pos+int64(k)-s.lastIndexed >= s.interval || len(s.index) == 0) {
				s.index = append(s.index, indexEntryT{offset: offset, pos: pos + int64(k)})
				s.lastIndexed = pos + int64(k)
			}
			offset++
			k += m
		}
		pos += int64(k)
	}
}

func (s *segment) writeIndex() error {
	b := make([]byte, 0, len(s.index)*indexEntry)
	for _, e := range s.index {
		b = binary.BigEndian.AppendUint32(b, uint32(e.offset-s.base))
		b = binary.BigEndian.AppendUint32(b, uint32(e.pos))
	}
	if err := s.idx.Truncate(0); err != nil {
		return err
	}
	_, err := s.idx.WriteAt(b, 0)
	return err
}

func (s *segment) addIndex(offset, pos int64) {
	s.index = append(s.index, indexEntryT{offset: offset, pos: pos})
	s.lastIndexed = pos
	var b [indexEntry]byte
	binary.BigEndian.PutUint32(b[:], uint32(offset-s.base))
	binary.BigEndian.PutUint32(b[4:], uint32(pos))
	// The index is rebuilt from the records on recovery, so a failed or torn
	// index write costs a scan, not data; the error is surfaced at seal.
	_, _ = s.idx.WriteAt(b[:], int64(len(s.index)-1)*indexEntry)
}

// find returns the file position of offset, which must be in [base, next].
func (s *segment) find(offset int64) (int64, error) {
	if offset == s.next {
		return s.size, nil
	}
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].offset > offset }) - 1
	if i < 0 {
		return 0, fmt.Errorf("segment %d: offset %d not indexed", s.base, offset)
	}
	cur, pos := s.index[i].offset, s.index[i].pos
	hdr := make([]byte, 4)
	for cur < offset {
		if _, err := s.f.ReadAt(hdr, pos); err != nil {
			return 0, fmt.Errorf("segment %d: find %d: %w", s.base, offset, err)
		}
		pos += 4 + int64(binary.BigEndian.Uint32(hdr))
		cur++
	}
	return pos, nil
}

func (s *segment) truncate(offset, pos int64) error {
	if err := s.f.Truncate(pos); err != nil {
		return err
	}
	s.size, s.next = pos, offset
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].pos >= pos })
	s.index = s.index[:i]
	s.lastIndexed = -s.interval
	if i > 0 {
		s.lastIndexed = s.index[i-1].pos
	}
	if err := s.writeIndex(); err != nil {
		return err
	}
	return s.f.Sync()
}

// seal syncs a segment that will take no more appends.
func (s *segment) seal() error {
	if err := s.writeIndex(); err != nil {
		return fmt.Errorf("seal segment %d: %w", s.base, err)
	}
	if err := errors.Join(s.f.Sync(), s.idx.Sync()); err != nil {
		return fmt.Errorf("seal segment %d: %w", s.base, err)
	}
	return nil
}

func (s *segment) close() error { return errors.Join(s.f.Close(), s.idx.Close()) }

func (s *segment) remove() error {
	return errors.Join(s.close(), os.Remove(s.f.Name()), os.Remove(s.idx.Name()))
}
