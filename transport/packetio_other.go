//go:build !linux

package transport

import "net"

// msgTrunc is unknown off Linux: truncated datagrams fail their CRC and are counted there.
const msgTrunc = 0

const maxBatch = 1

func newMmsgIO(u *net.UDPConn, connected, gso bool, gro groMode, family int) (mmsgIO, bool) {
	return mmsgIO{}, false
}

func gsoDisabledByEnv() bool { return true }

func groDisabledByEnv() bool { return true }

// connectDialSocket: Dial keeps an unconnected socket off Linux, where how ICMP errors on a
// connected one surface is untested (Windows reports WSAECONNRESET on reads, for one).
const connectDialSocket = false

// tuneSocket asks for size-byte kernel buffers if size > 0 and reports the sizes requested if
// granted (the granted size is not observable portably); see the Linux version. Its count of
// system calls is 0: only Linux counts them.
func tuneSocket(u *net.UDPConn, size int, _ bool, _ int) (rcv, snd, calls int) {
	if size <= 0 {
		return 0, 0, 0
	}
	if u.SetReadBuffer(size) == nil {
		rcv = size
	}
	if u.SetWriteBuffer(size) == nil {
		snd = size
	}
	return rcv, snd, 0
}

// socketBuffers is unknown off Linux.
func socketBuffers(*net.UDPConn) (rcv, snd int) { return 0, 0 }

// familyOf is 0 off Linux, where nothing asks for a socket's address family.
func familyOf(bool) int { return 0 }
