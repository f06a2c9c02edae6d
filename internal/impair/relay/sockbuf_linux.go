package relay

import (
	"net"
	"syscall"
)

// socketBuffers returns SO_RCVBUF and SO_SNDBUF as the kernel reports them, so that reports show
// what was granted rather than what was asked for (net.core.rmem_max caps unprivileged requests).
func socketBuffers(c *net.UDPConn) (rd, wr int) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0
	}
	_ = raw.Control(func(fd uintptr) { // an error leaves the zeros: "unknown"
		rd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		wr, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	return rd, wr
}
