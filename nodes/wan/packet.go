package wan

import "net/netip"

// ipv4Addrs returns the source and destination of an IPv4 packet. Anything
// else (IPv6, truncated or malformed headers) reports ok=false and is passed
// through untouched by the engine: the router only steers IPv4 into the TUN.
func ipv4Addrs(b []byte) (src, dst netip.Addr, ok bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return netip.Addr{}, netip.Addr{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(b[2])<<8 | int(b[3])
	if ihl < 20 || total < ihl || total > len(b) {
		return netip.Addr{}, netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), true
}
