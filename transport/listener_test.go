package transport

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/transport/transporttest"
)

// fakeInitial is a client's first datagram that starts a handshake and then says nothing more:
// a valid Initial packet with a PING, padded to 1200 bytes, but no ClientHello.
func fakeInitial(dcid, scid uint64) []byte {
	h := header.Header{Type: header.TypeInitial, Version: header.Version1, DstConnID: dcid, SrcConnID: scid, PNLen: 4}
	b := header.AppendHeader(nil, &h)
	b = header.AppendPing(b)
	b = header.AppendPadding(b, header.MinInitialDatagramSize-header.TrailerLen-len(b))
	return header.Seal(b, 0)
}

// TestSilentHandshakesDoNotBlockAccept: clients that send an Initial and go silent occupy
// half-open slots, but a real client is accepted at once; beyond MaxHalfOpen new clients are
// dropped and counted; the silent ones are dropped after HandshakeTimeout.
func TestSilentHandshakesDoNotBlockAccept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		conf := &Config{MaxHalfOpen: 5, HandshakeTimeout: 5 * time.Second, RetryThreshold: -1}
		ln, err := NewListener(nw.Listen("server"), serverTLS(t), conf)
		require.NoError(t, err)
		attacker := nw.Listen("attacker")
		defer attacker.Close()
		go func() { // swallow the server's answers
			buf := make([]byte, 2048)
			for {
				if _, _, err := attacker.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
		for i := range 4 {
			_, err := attacker.WriteTo(fakeInitial(uint64(100+i), uint64(200+i)), ln.Addr())
			require.NoError(t, err)
		}
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		require.Equal(t, 4, ln.Stats().HalfOpen)

		start := time.Now()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			require.NoError(t, err)
			accepted <- c
		}()
		client, err := DialPacketConn(t.Context(), nw.Listen("client"), ln.Addr(), clientTLS(t), conf)
		require.NoError(t, err)
		server := <-accepted
		require.Less(t, time.Since(start), 100*time.Millisecond, "Accept waited behind silent handshakes")

		for i := range 3 {
			_, err := attacker.WriteTo(fakeInitial(uint64(300+i), uint64(400+i)), ln.Addr())
			require.NoError(t, err)
		}
		time.Sleep(10 * time.Millisecond)
		st := ln.Stats()
		require.Equal(t, 5, st.HalfOpen)
		require.Equal(t, uint64(2), st.DroppedHalfOpen)

		time.Sleep(6 * time.Second)
		st = ln.Stats()
		require.Equal(t, 0, st.HalfOpen)
		require.Equal(t, uint64(5), st.HandshakeFailures)
		require.Equal(t, uint64(1), st.Accepted)

		// The established connection was not disturbed.
		_, err = client.Write([]byte("hi"))
		require.NoError(t, err)
		buf := make([]byte, 2)
		_, err = io.ReadFull(server, buf)
		require.NoError(t, err)
		shutdown(client, server, ln)
	})
}

// TestRetry: with RequireAddressValidation the server answers the first Initial with a
// stateless Retry and keeps state only once the client echoes the token.
func TestRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: 5 * time.Millisecond}
		client, server, ln := memPair(t, nw, &Config{RequireAddressValidation: true})
		st := ln.Stats()
		// The ClientHello (with an ML-KEM key share) spans two Initial datagrams, and each is
		// answered statelessly; the client follows the first Retry and ignores the second.
		require.GreaterOrEqual(t, st.RetriesSent, uint64(1))
		require.Equal(t, uint64(1), st.Accepted)
		require.Zero(t, st.DroppedInvalidToken)
		_, err := client.Write([]byte("validated"))
		require.NoError(t, err)
		buf := make([]byte, 9)
		_, err = io.ReadFull(server, buf)
		require.NoError(t, err)
		// One extra round trip (10 ms) for the Retry.
		require.GreaterOrEqual(t, client.Stats().SmoothedRTT, 10*time.Millisecond)
	})
}

// TestRetryTokenChecks: tokens are bound to the address, the connection ID and a lifetime.
func TestRetryTokenChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{}
		ln, err := NewListener(nw.Listen("server"), serverTLS(t), nil)
		require.NoError(t, err)
		defer shutdown(ln)
		now := time.Now()
		m := &message{addr: transporttest.Addr{Host: "a", Port: 1}}
		tok := ln.makeToken(nil, m, 42, 0x0d, now)
		valid := func(tok []byte, m *message, cid uint64, now time.Time) bool {
			_, ok := ln.checkToken(tok, m, cid, now)
			return ok
		}
		odcid, ok := ln.checkToken(tok, m, 42, now.Add(time.Second))
		require.True(t, ok)
		require.Equal(t, uint64(0x0d), odcid, "the original DCID comes back")
		require.False(t, valid(tok, m, 43, now), "other connection ID")
		other := &message{addr: transporttest.Addr{Host: "b", Port: 1}}
		require.False(t, valid(tok, other, 42, now), "other address")
		require.False(t, valid(tok, m, 42, now.Add(retryTokenLifetime+time.Second)), "expired")
		bad := append([]byte(nil), tok...)
		bad[len(bad)-1] ^= 1
		require.False(t, valid(bad, m, 42, now), "forged")
		bad = append([]byte(nil), tok...)
		bad[9] ^= 1
		require.False(t, valid(bad, m, 42, now), "other original DCID")
		require.False(t, valid(tok[:5], m, 42, now), "short")
	})
}

// TestVersionNegotiation: a padded datagram of an unknown version gets the list of versions we
// speak; a short one gets nothing (no amplification).
func TestVersionNegotiation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{}
		ln, err := NewListener(nw.Listen("server"), serverTLS(t), nil)
		require.NoError(t, err)
		defer shutdown(ln)
		peer := nw.Listen("peer")
		defer peer.Close()

		dg := make([]byte, 1200)
		dg[0] = 0xc0
		binary.BigEndian.PutUint32(dg[1:], 0x1a2a3a4a)
		binary.BigEndian.PutUint64(dg[5:], 7)  // DCID
		binary.BigEndian.PutUint64(dg[13:], 9) // SCID
		_, err = peer.WriteTo(dg[:100], ln.Addr())
		require.NoError(t, err)
		_, err = peer.WriteTo(dg, ln.Addr())
		require.NoError(t, err)

		buf := make([]byte, 2048)
		n, _, err := peer.ReadFrom(buf)
		require.NoError(t, err)
		h, versions, err := header.Open(buf[:n])
		require.NoError(t, err)
		require.Equal(t, header.TypeVersionNegotiation, h.Type)
		require.Equal(t, uint64(9), h.DstConnID)
		require.Equal(t, uint64(7), h.SrcConnID)
		require.Equal(t, header.Version1, binary.BigEndian.Uint32(versions))
		st := ln.Stats()
		require.Equal(t, uint64(1), st.VersionNegotiations)
		require.Equal(t, uint64(1), st.DroppedVersion)
	})
}

// TestListenerCloseKeepsAcceptedConns: Close stops accepting, but accepted connections keep
// working over the shared socket, which closes with the last of them.
func TestListenerCloseKeepsAcceptedConns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		client, server, ln := memPair(t, nw, nil)
		require.NoError(t, ln.Close())
		_, err := ln.Accept()
		require.ErrorIs(t, err, net.ErrClosed)

		// A new client is not admitted.
		_, err = DialPacketConn(t.Context(), nw.Listen("late"), ln.Addr(), clientTLS(t), &Config{HandshakeTimeout: time.Second})
		require.Error(t, err)

		go echo(server)
		_, err = client.Write([]byte("after close"))
		require.NoError(t, err)
		buf := make([]byte, 11)
		_, err = io.ReadFull(client, buf)
		require.NoError(t, err)
		require.False(t, isClosedChan(ln.ep.readerDone), "socket closed under an accepted conn")
		require.Positive(t, ln.Stats().DroppedClosed)

		require.NoError(t, client.Close())
		<-server.driverDone
		<-ln.ep.readerDone // the last connection took the socket with it
	})
}
