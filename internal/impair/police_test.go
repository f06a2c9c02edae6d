package impair

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPolicerHandWorked: 8 Mbit/s is 1000 bytes per millisecond; a 3000-byte bucket holds three
// 1000-byte datagrams and refills one per millisecond.
func TestPolicerHandWorked(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	l := NewLink(Config{PoliceRate: 8_000_000, PoliceBurst: 3000}, start)
	b := make([]byte, 1000)
	send := func(at time.Duration) DropReason { return l.Send(start.Add(at), b).Drop }

	for i := range 3 {
		require.Equal(t, NotDropped, send(0), "datagram %d of the full bucket", i)
	}
	require.Equal(t, DropPolice, send(0), "the bucket is empty")
	require.Equal(t, DropPolice, send(999*time.Microsecond), "not quite a datagram's worth refilled")
	require.Equal(t, NotDropped, send(time.Millisecond), "one datagram's worth refilled")
	require.Equal(t, DropPolice, send(time.Millisecond))
	// Idle for long: the bucket is full again, but holds no more than 3000 bytes.
	for range 3 {
		require.Equal(t, NotDropped, send(time.Second))
	}
	require.Equal(t, DropPolice, send(time.Second))
	st := l.Stats()
	require.Equal(t, uint64(4), st.PoliceDrops)
	require.Equal(t, uint64(4), st.Dropped())
	// Conforming datagrams are not delayed: a policer is not a queue.
	r := l.Send(start.Add(2*time.Second), b)
	require.Equal(t, start.Add(2*time.Second), r.At[0])
}

// TestPolicerLongRunRate: offered twice the policed rate for a second, the policer passes the rate
// plus one bucket.
func TestPolicerLongRunRate(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	l := NewLink(Config{PoliceRate: 8_000_000, PoliceBurst: 3000, Seed: 1}, start)
	b := make([]byte, 1000)
	passed := 0
	for i := range 2000 {
		if l.Send(start.Add(time.Duration(i)*500*time.Microsecond), b).Copies > 0 {
			passed++
		}
	}
	// 2000 datagrams over 999.5 ms: the rate refills 999.5 datagrams' worth, the full bucket
	// adds 3 — 1002 whole datagrams (worked through: 0, 0.5, 1, 1.5 and 2 ms pass, then every
	// whole millisecond from 3 to 999).
	require.Equal(t, 1002, passed)
	require.Equal(t, uint64(2000-1002), l.Stats().PoliceDrops)
}

// TestPolicerDefaultsAndValidation: an oversized datagram passes a full bucket; the default bucket
// is 10 ms at the rate; bad values are refused with the field's name.
func TestPolicerDefaultsAndValidation(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	l := NewLink(Config{PoliceRate: 8_000_000, PoliceBurst: 500}, start)
	require.Equal(t, NotDropped, l.Send(start, make([]byte, 1000)).Drop, "larger than the bucket, bucket full")
	require.Equal(t, DropPolice, l.Send(start, make([]byte, 1000)).Drop)

	l = NewLink(Config{PoliceRate: 8_000_000}, start) // 10 ms: 10 000 bytes
	n := 0
	for l.Send(start, make([]byte, 1000)).Copies > 0 {
		n++
	}
	require.Equal(t, 10, n)

	require.ErrorContains(t, Config{PoliceRate: -1}.Validate(), "PoliceRate")
	require.ErrorContains(t, Config{PoliceBurst: 100}.Validate(), "PoliceBurst needs PoliceRate")
	require.ErrorContains(t, Config{PoliceRate: 1, PoliceBurst: -1}.Validate(), "PoliceBurst")
	require.Contains(t, Config{PoliceRate: 50_000_000, PoliceBurst: 9000}.String(), "police=50mbit police-burst=9000B")
	require.False(t, Config{PoliceRate: 1}.Passthrough())
}
