package wan

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// ipv4Packet builds a minimal IPv4/UDP packet of the given total length.
func ipv4Packet(src, dst string, size int) []byte {
	if size < 28 {
		size = 28
	}
	b := make([]byte, size)
	b[0] = 0x45
	b[2], b[3] = byte(size>>8), byte(size)
	b[8] = 64
	b[9] = 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	return b
}

func TestIPv4Addrs(t *testing.T) {
	good := ipv4Packet("10.1.0.5", "10.2.0.7", 60)
	tests := []struct {
		name     string
		pkt      []byte
		ok       bool
		src, dst string
	}{
		{"valid", good, true, "10.1.0.5", "10.2.0.7"},
		{"empty", nil, false, "", ""},
		{"short", good[:19], false, "", ""},
		{"ipv6", append([]byte{0x60}, good[1:]...), false, "", ""},
		{"ihl too small", append([]byte{0x44}, good[1:]...), false, "", ""},
		{"total beyond buffer", good[:40], false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst, ok := ipv4Addrs(tt.pkt)
			assert.Equal(t, tt.ok, ok)
			if tt.ok {
				assert.Equal(t, tt.src, src.String())
				assert.Equal(t, tt.dst, dst.String())
			}
		})
	}
}

func FuzzIPv4Addrs(f *testing.F) {
	f.Add(ipv4Packet("10.1.0.5", "10.2.0.7", 60))
	f.Add([]byte{0x4f, 0, 0, 60})
	f.Fuzz(func(t *testing.T, b []byte) {
		src, dst, ok := ipv4Addrs(b)
		if ok {
			assert.True(t, src.Is4() && dst.Is4())
			assert.GreaterOrEqual(t, len(b), 20)
		}
	})
}
