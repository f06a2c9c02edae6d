package transport

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestSocketsDoNotFragment: sockets Listen and Dial open send with DF set and ignore the
// kernel's path MTU estimate, so that path MTU discovery's probes are dropped, not fragmented.
func TestSocketsDoNotFragment(t *testing.T) {
	for _, c := range []struct {
		network, addr string
		level, opt    int
		want          int
	}{
		{"udp4", "127.0.0.1:0", unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE},
		{"udp6", "[::1]:0", unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE},
	} {
		for _, disable := range []bool{false, true} {
			ln, err := Listen(c.network, c.addr, serverTLS(t), &Config{DisablePathMTUDiscovery: disable})
			if err != nil && c.network == "udp6" {
				t.Skipf("no IPv6 loopback: %v", err)
			}
			require.NoError(t, err)
			rc, err := ln.ep.sock.pc.(*net.UDPConn).SyscallConn()
			require.NoError(t, err)
			var got int
			var gerr error
			require.NoError(t, rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), c.level, c.opt) }))
			require.NoError(t, gerr)
			if disable {
				require.NotEqual(t, c.want, got, "%s: DF set with path MTU discovery off", c.network)
			} else {
				require.Equal(t, c.want, got, c.network)
			}
			require.NoError(t, ln.Close())
		}
	}
}
