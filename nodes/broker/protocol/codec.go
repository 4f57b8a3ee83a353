// Package protocol is the broker's binary wire format: length-prefixed frames
// carrying versioned requests and responses matched by correlation id.
package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame bounds a frame so a corrupt length cannot make a reader allocate
// without limit.
const MaxFrame = 64 << 20

// ErrMalformed means a frame's contents do not decode.
var ErrMalformed = errors.New("malformed message")

// Frame returns payload with its u32 length prefix, ready for one write.
func Frame(payload []byte) ([]byte, error) {
	if len(payload) > MaxFrame {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d", len(payload), MaxFrame)
	}
	out := make([]byte, 4, 4+len(payload))
	binary.BigEndian.PutUint32(out, uint32(len(payload)))
	return append(out, payload...), nil
}

// ReadFrame reads one length-prefixed frame into buf (grown as needed).
func ReadFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrMalformed, n, MaxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// encoder appends big-endian fields.
type encoder struct{ b []byte }

func (e *encoder) i8(v int8)   { e.b = append(e.b, byte(v)) }
func (e *encoder) i16(v int16) { e.b = binary.BigEndian.AppendUint16(e.b, uint16(v)) }
func (e *encoder) i32(v int32) { e.b = binary.BigEndian.AppendUint32(e.b, uint32(v)) }
func (e *encoder) i64(v int64) { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) bytes(v []byte) {
	e.i32(int32(len(v)))
	e.b = append(e.b, v...)
}
func (e *encoder) str(v string) {
	e.i32(int32(len(v)))
	e.b = append(e.b, v...)
}
func (e *encoder) i32s(v []int32) {
	e.i32(int32(len(v)))
	for _, x := range v {
		e.i32(x)
	}
}

// decoder reads fields; the first error sticks and later reads return zeros,
// so message decoders check err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) need(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = fmt.Errorf("%w: need %d bytes, have %d", ErrMalformed, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) i8() int8 {
	if v := d.need(1); v != nil {
		return int8(v[0])
	}
	return 0
}

func (d *decoder) i16() int16 {
	if v := d.need(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (d *decoder) i32() int32 {
	if v := d.need(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (d *decoder) i64() int64 {
	if v := d.need(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (d *decoder) boolean() bool {
	v := d.i8()
	if v != 0 && v != 1 && d.err == nil {
		d.err = fmt.Errorf("%w: boolean %d", ErrMalformed, v)
	}
	return v == 1
}

func (d *decoder) bytes() []byte { return d.need(int(d.i32())) }
func (d *decoder) str() string   { return string(d.bytes()) }

// count reads an array length, bounded by the bytes left (each element
// takes at least min bytes) so a corrupt count cannot allocate without limit.
func (d *decoder) count(minSize int) int {
	n := int(d.i32())
	if d.err == nil && (n < 0 || n*minSize > len(d.b)) {
		d.err = fmt.Errorf("%w: count %d with %d bytes left", ErrMalformed, n, len(d.b))
	}
	if d.err != nil {
		return 0
	}
	return n
}

func (d *decoder) i32s() []int32 {
	n := d.count(4)
	out := make([]int32, n)
	for i := range out {
		out[i] = d.i32()
	}
	return out
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return d.err
}
