//go:build unix

package contenders

import "syscall"

// setMSS sets TCP_MAXSEG on a TCP socket.
func setMSS(fd uintptr, mss int) error {
	return syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss)
}
