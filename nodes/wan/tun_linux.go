package wan

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Offload flags of TUNSETOFFLOAD (linux/if_tun.h).
const (
	tunFCsum = 0x01
	tunFTSO4 = 0x02
	tunFTSO6 = 0x04
)

// vnetHdrLen is the size of struct virtio_net_hdr that prefixes every
// packet on a TUN opened with IFF_VNET_HDR.
const vnetHdrLen = 10

// openTUN creates a TUN device (IPv4 packets without the packet-info
// header) in the calling thread's network namespace. The device disappears
// when the returned file is closed. With offload, the kernel hands over
// TCP segments of up to 64 KB (GSO) behind a virtio-net header, as it does
// between veths, instead of cutting them to the MTU for the TUN.
func openTUN(name string, offload bool) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if offload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create tun %s: %w", name, err)
	}
	// Non-blocking so the file joins Go's poller: reads park the goroutine
	// instead of a thread, and Close unblocks a pending Read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun %s: set nonblocking: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+name), nil
}

// setOffload lets the kernel hand GSO segments to the TUN whole (on) or
// makes it cut them to MTU-sized packets first (off). It can change while
// packets flow; the device must have been opened with offload.
func setOffload(tun *os.File, on bool) error {
	flags := 0
	if on {
		flags = tunFCsum | tunFTSO4 | tunFTSO6
	}
	rc, err := tun.SyscallConn()
	if err != nil {
		return fmt.Errorf("tun offload: %w", err)
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, flags) }); err != nil {
		return fmt.Errorf("tun offload: %w", err)
	}
	if ioErr != nil {
		return fmt.Errorf("tun offload %v: %w", on, ioErr)
	}
	return nil
}

// needsPackets reports whether a link set needs per-packet decisions: loss
// and bandwidth pacing of a 64 KB GSO segment would drop or delay dozens
// of packets as one, which TCP reacts to very differently.
func needsPackets(specs []LinkSpec) bool {
	for _, s := range specs {
		if s.Loss > 0 || s.BandwidthBps > 0 {
			return true
		}
	}
	return false
}
