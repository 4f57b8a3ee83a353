package geodns

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// udpReadBuffer absorbs bursts: a full socket buffer drops queries silently.
const udpReadBuffer = 4 << 20

// ListenUDP binds n UDP sockets to addr with SO_REUSEPORT, so the kernel
// spreads queries over n readers. With port 0 the first socket picks the
// port and the others join it.
func ListenUDP(ctx context.Context, addr string, n int) ([]net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var pcs []net.PacketConn
	for i := range max(n, 1) {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			closeAll(pcs)
			return nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		if u, ok := pc.(*net.UDPConn); ok {
			// Best effort: the kernel caps it at net.core.rmem_max.
			_ = u.SetReadBuffer(udpReadBuffer)
		}
		pcs = append(pcs, pc)
		if i == 0 {
			addr = pc.LocalAddr().String()
		}
	}
	return pcs, nil
}

func closeAll(pcs []net.PacketConn) {
	for _, pc := range pcs {
		pc.Close()
	}
}
