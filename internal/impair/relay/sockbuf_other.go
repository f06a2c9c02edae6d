//go:build !linux

package relay

import "net"

// socketBuffers reports the buffer sizes as unknown where we do not know how to ask.
func socketBuffers(*net.UDPConn) (rd, wr int) { return 0, 0 }
