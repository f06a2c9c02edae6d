package transport

import (
	"bytes"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWorkerParks walks workState through a park: a kick wakes a parked worker without starting
// another, and a worker that waited workerLinger in vain ends, so the next kick starts one.
func TestWorkerParks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &workState{wake: make(chan struct{}, 1)}
		linger := time.NewTimer(time.Hour)
		linger.Stop()
		require.True(t, w.want(0), "the first kick starts the worker")
		_, ok := w.next()
		require.True(t, ok)
		_, ok = w.next()
		require.False(t, ok, "out of work")
		require.Equal(t, uint32(workRunning|workParked), w.bits.Load())

		require.False(t, w.want(workFired), "a parked worker is woken, not started again")
		start := time.Now()
		require.True(t, w.park(linger), "the token was there before the worker parked")
		require.Zero(t, time.Since(start))
		bits, ok := w.next()
		require.True(t, ok)
		require.NotZero(t, bits&workFired)

		_, ok = w.next()
		require.False(t, ok)
		woken := make(chan bool)
		go func() { woken <- w.park(linger) }()
		synctest.Wait()
		time.Sleep(workerLinger / 2) // virtual time: the worker is parked meanwhile
		require.False(t, w.want(0))
		require.True(t, <-woken, "a kick while parked wakes the worker")
		require.Equal(t, workerLinger/2, time.Since(start))

		_, ok = w.next()
		require.True(t, ok)
		_, ok = w.next()
		require.False(t, ok)
		require.False(t, w.park(linger), "no kick within workerLinger: the worker ends")
		require.Equal(t, workerLinger/2+workerLinger, time.Since(start))
		require.Zero(t, w.bits.Load())
		require.True(t, w.want(0), "the next kick starts a worker")
	})
}

// TestBulkWorkerLingers checks that a bulk transfer's connections keep their workers between
// steps instead of starting one per step: at 24751f7, where a worker ended as soon as it ran
// out of work, the sender started a worker for most steps (this test: 249-320 for 363-515 steps;
// with the linger 3-10 for ~500), and each new goroutine grew its stack by copying it.
func TestBulkWorkerLingers(t *testing.T) {
	if raceEnabled {
		// The race detector slows steps several times over, so pauses past the linger are
		// common (CI: 22 workers for 69 receiver steps); what this counts is a speed effect.
		t.Skip("workers per step depend on speed; not meaningful under the race detector")
	}
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	client, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	server := <-conns
	defer func() { _ = client.Close(); _ = server.Close() }() // before checkLeaks, also on failure
	data := make([]byte, 8<<20)
	if testing.Short() {
		data = data[:2<<20]
	}
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, server)
		done <- n
	}()
	cs, cw := client.steps.Load(), client.workers.Load()
	ss, sw := server.steps.Load(), server.workers.Load()
	_, err = io.Copy(client, bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, client.CloseWrite())
	require.Equal(t, int64(len(data)), <-done)
	for _, e := range []struct {
		name           string
		steps, workers uint64
	}{
		{"sender", client.steps.Load() - cs, client.workers.Load() - cw},
		{"receiver", server.steps.Load() - ss, server.workers.Load() - sw},
	} {
		t.Logf("%s: %d steps, %d workers started", e.name, e.steps, e.workers)
		// A worker lingers a millisecond: only a pause that long (a busy machine deschedules
		// the process) lets one end. A fifth leaves room for many.
		require.LessOrEqual(t, e.workers*5, e.steps, "%s: workers started per step", e.name)
	}
	require.NoError(t, client.Close())
	require.NoError(t, server.Close())
}
