//go:build unix

package lb

import "syscall"

// peekIdle reports whether the socket fd of an idle connection is still
// usable: open, with nothing to read. It never blocks.
func peekIdle(fd uintptr, buf []byte) bool {
	_, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// Anything but "would block" is the backend's FIN (a zero-byte read),
	// an error, or an answer nobody asked for.
	return err == syscall.EAGAIN
}
