package simnet

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
)

// TestNATRebinding: the client's address changes twice in the middle of a transfer in both
// directions. The server moves to the new address, validates it with PATH_CHALLENGE, and
// nothing is lost (Run checks both streams byte for byte). The server's datagrams sent to the
// old address in the meantime are lost and repaired like any loss.
func TestNATRebinding(t *testing.T) {
	for _, loss := range []float64{0, 0.02} {
		// A 30 Mbit/s bottleneck keeps the transfer going past both rebindings whatever the
		// controller (BBR, the default, would finish on an unlimited link before the first).
		link := impair.Config{Delay: 10 * time.Millisecond, Loss: loss, Rate: 30_000_000, QueueBytes: 75_000}
		sc := Scenario{Name: "rebind", Up: link, Down: link, ClientBytes: 4 << 20, ServerBytes: 4 << 20,
			Limit: 60 * time.Second, Rebind: []time.Duration{300 * time.Millisecond, 700 * time.Millisecond}}
		plain := sc
		plain.Rebind = nil
		for seed := range int64(4) {
			res, err := Run(sc, seed)
			require.NoError(t, err)
			require.False(t, res.NetworkDead)
			require.True(t, res.PeerIsClient, "seed %d: the server does not send to the client's address", seed)
			require.Equal(t, 2, res.PeerMoves, "seed %d", seed)
			require.Equal(t, uint64(2), res.Server.PathChanges, "seed %d", seed)
			require.Equal(t, uint64(2), res.Server.PathValidations, "seed %d: a new path was not validated", seed)
			if seed == 0 {
				base, err := Run(plain, seed)
				require.NoError(t, err)
				t.Logf("loss %v: 4 MiB each way with two rebindings in %v, without in %v (%v per rebinding); %d server datagrams went to a stale address",
					loss, res.Elapsed, base.Elapsed, (res.Elapsed-base.Elapsed)/2, res.Misrouted)
			}
		}
	}
}

// TestSpoofedAddressChange: an attacker on the path races copies of the client's datagrams to
// the server from its own address. The copies are genuine, so the server may move to the
// attacker's address — but only until the client's next datagram from its real one moves it
// back, and while the attacker's address is unvalidated the server sends there at most three
// times what it received from it. The transfer completes and the server ends up at the client.
func TestSpoofedAddressChange(t *testing.T) {
	link := impair.Config{Delay: 10 * time.Millisecond}
	sc := Scenario{Name: "spoof", Up: link, Down: link, ClientBytes: 1 << 20, ServerBytes: 1 << 20,
		Limit: 60 * time.Second, Spoof: true}
	for seed := range int64(4) {
		res, err := Run(sc, seed)
		require.NoError(t, err)
		require.False(t, res.NetworkDead)
		require.Positive(t, res.Spoofed, "seed %d", seed)
		require.True(t, res.PeerIsClient, "seed %d: the attacker kept the session", seed)
		// Every move to the attacker was followed by a move back.
		require.Zero(t, res.PeerMoves%2, "seed %d", seed)
		if seed == 0 {
			plain := sc
			plain.Spoof = false
			base, err := Run(plain, seed)
			require.NoError(t, err)
			t.Logf("%d spoofed copies, the server moved %d times, transfer took %v (%v without the attacker)",
				res.Spoofed, res.PeerMoves, res.Elapsed, base.Elapsed)
		}
	}
}
