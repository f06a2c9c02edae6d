package transport

import (
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDialledEndpointsShareDriverStates: a step on a dialled connection's socket takes its
// scratch space (a driverState: the batch's messages and a batch writer) from a pool that all
// dialled endpoints share, its writer pointed at the socket, instead of allocating it from a pool
// of the endpoint's own, empty on every Dial: 2-3 of them, 18 KB, per handshake.
func TestDialledEndpointsShareDriverStates(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops a random quarter of its Puts")
	}
	eps := make([]*endpoint, 2)
	for i := range eps {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pc.Close() })
		conf := (*Config)(nil).withDefaults()
		eps[i] = newEndpoint(pc, &conf, false, true, 0)
		eps[i].single = true
	}
	// One processor: a sync.Pool hands back what was put on the same one.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	d := eps[0].driverState()
	w := d.w
	eps[0].putDriverState(d)
	d2 := eps[1].driverState()
	require.Same(t, d, d2, "a new dialled endpoint allocated its own driverState")
	require.Same(t, eps[1], d2.ep)
	require.Same(t, w, d2.w, "the writer was not reused")
	eps[1].putDriverState(d2)
}
