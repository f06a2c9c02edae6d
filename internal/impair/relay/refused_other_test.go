//go:build !unix

package relay

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// refusedTCPAddr returns a loopback address where TCP connections are refused: a closed
// listener's (another program may take the port meanwhile, but rarely).
func refusedTCPAddr(t *testing.T) string {
	t.Helper()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := dead.Addr().String()
	require.NoError(t, dead.Close())
	return addr
}
