package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
)

// TestListenerMACsDoNotAllocate: the reset token of every new session and the Retry token of
// every Initial in a Retry flood are computed with HMACs keyed once per listener, without
// allocating; the reset token is still the MAC a restarted server with the same key computes
// (Config.StatelessResetKey), byte for byte as before.
func TestListenerMACsDoNotAllocate(t *testing.T) {
	key := make([]byte, 32)
	key[0] = 7
	ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(t), &Config{StatelessResetKey: key})
	require.NoError(t, err)
	defer ln.Close()
	// The reader goroutine computes these MACs; it is idle here, as nobody sends to the socket.
	{

		mac := hmac.New(sha256.New, key)
		mac.Write([]byte("tlsgram stateless reset"))
		mac.Write(binary.BigEndian.AppendUint64(nil, 42))
		var want [header.StatelessResetTokenLen]byte
		copy(want[:], mac.Sum(nil))
		require.Equal(t, want, ln.resetToken(42))
		require.NotEqual(t, want, ln.resetToken(43))

		// A client's address as the UDP socket's reader fills it in (the token binds it).
		m := &message{ap: netip.MustParseAddrPort("192.0.2.1:4433")}
		now := time.Now()
		var tok [retryTokenLen]byte
		allocs := testing.AllocsPerRun(100, func() {
			_ = ln.resetToken(42)
			ln.makeToken(tok[:0], m, 42, 0x0d, now)
		})
		require.Zero(t, allocs, "allocations per reset token and Retry token")
		odcid, ok := ln.checkToken(tok[:], m, 42, now)
		require.True(t, ok)
		require.Equal(t, uint64(0x0d), odcid)
		other := &message{ap: netip.MustParseAddrPort("192.0.2.1:4434")}
		_, ok = ln.checkToken(tok[:], other, 42, now)
		require.False(t, ok, "a token for another address")
	}
}
