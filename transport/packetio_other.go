//go:build !linux

package transport

import "net"

// msgTrunc is unknown off Linux: truncated datagrams fail their CRC and are counted there.
const msgTrunc = 0

const maxBatch = 1

func newMmsgIO(u *net.UDPConn, connected, gso bool, gro groMode) (mmsgIO, bool) {
	return mmsgIO{}, false
}

func gsoDisabledByEnv() bool { return true }

func groDisabledByEnv() bool { return true }

// connectDialSocket: Dial keeps an unconnected socket off Linux, where how ICMP errors on a
// connected one surface is untested (Windows reports WSAECONNRESET on reads, for one).
const connectDialSocket = false

// setSocketBuffers asks for size-byte kernel buffers; the granted size is not observable
// portably, so the request is reported.
func setSocketBuffers(u *net.UDPConn, size int) (rcv, snd int) {
	if size <= 0 {
		return 0, 0
	}
	if u.SetReadBuffer(size) == nil {
		rcv = size
	}
	if u.SetWriteBuffer(size) == nil {
		snd = size
	}
	return rcv, snd
}

// setDontFragment is Linux-only for now: elsewhere the operating system's default decides
// whether large datagrams are fragmented, and path MTU discovery learns only from what arrives.
func setDontFragment(*net.UDPConn) {}
