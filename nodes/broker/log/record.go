// Package log is one partition's append-only, segmented log on disk: records
// with dense offsets, segments rolled by size, a sparse offset index per
// segment, a leader-epoch cache for replica truncation, and recovery that cuts
// a torn tail on open.
package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record is one message. Offset and Epoch are assigned by the partition
// leader; the wire format and the on-disk format are the same bytes.
type Record struct {
	Offset    int64
	Epoch     int32 // leader epoch that appended the record
	Timestamp int64 // unix nanoseconds, set by the leader
	Key       []byte
	Value     []byte
}

// Frame layout: size u32 (bytes after itself) | crc32c u32 (of the bytes after
// it) | offset i64 | epoch i32 | timestamp i64 | keyLen u32 | key | value.
const (
	headerSize = 4 + 4 + 8 + 4 + 8 + 4
	// MaxRecordSize bounds one record so a corrupt size cannot make a reader
	// allocate or skip gigabytes.
	MaxRecordSize = 16 << 20
)

var (
	// ErrShort means the buffer ends inside a record (a torn write or a
	// fetch cut at max bytes).
	ErrShort = errors.New("short record")
	// ErrCorrupt means the bytes are not a valid record.
	ErrCorrupt = errors.New("corrupt record")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// EncodedSize is the number of bytes AppendRecord adds for r.
func EncodedSize(r Record) int { return headerSize + len(r.Key) + len(r.Value) }

// AppendRecord appends r's frame to dst.
func AppendRecord(dst []byte, r Record) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(EncodedSize(r)-4))
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, filled below
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(r.Epoch))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Timestamp))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = append(dst, r.Value...)
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], crcTable))
	return dst
}

// DecodeRecord decodes the frame at the start of b and returns it with the
// number of bytes it used. Key and Value alias b.
func DecodeRecord(b []byte) (Record, int, error) {
	if len(b) < 4 {
		return Record{}, 0, ErrShort
	}
	size := int(binary.BigEndian.Uint32(b))
	if size < headerSize-4 || size > MaxRecordSize {
		return Record{}, 0, fmt.Errorf("%w: size %d", ErrCorrupt, size)
	}
	if len(b) < 4+size {
		return Record{}, 0, ErrShort
	}
	frame := b[:4+size]
	if crc32.Checksum(frame[8:], crcTable) != binary.BigEndian.Uint32(frame[4:]) {
		return Record{}, 0, fmt.Errorf("%w: checksum", ErrCorrupt)
	}
	keyLen := int(binary.BigEndian.Uint32(frame[28:]))
	if keyLen > len(frame)-headerSize {
		return Record{}, 0, fmt.Errorf("%w: key length %d", ErrCorrupt, keyLen)
	}
	r := Record{
		Offset:    int64(binary.BigEndian.Uint64(frame[8:])),
		Epoch:     int32(binary.BigEndian.Uint32(frame[16:])),
		Timestamp: int64(binary.BigEndian.Uint64(frame[20:])),
		Key:       frame[headerSize : headerSize+keyLen : headerSize+keyLen],
		Value:     frame[headerSize+keyLen:],
	}
	if r.Offset < 0 {
		return Record{}, 0, fmt.Errorf("%w: offset %d", ErrCorrupt, r.Offset)
	}
	return r, len(frame), nil
}

// DecodeAll decodes every whole record in b; a trailing partial record (a
// fetch cut at max bytes) is ignored, corruption is an error.
func DecodeAll(b []byte) ([]Record, error) {
	var out []Record
	for len(b) > 0 {
		r, n, err := DecodeRecord(b)
		if errors.Is(err, ErrShort) {
			break
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
		b = b[n:]
	}
	return out, nil
}
