package transport

import (
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/session"
	"github.com/tlsgram/tlsgram/transport/transporttest"
)

// TestSynctestDonePeerClose: Done fires when the peer closes an idle connection, and Err says
// the peer closed it.
func TestSynctestDonePeerClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: 5 * time.Millisecond}
		client, server, ln := memPair(t, nw, nil)
		defer ln.Close()

		require.NoError(t, client.Err())
		select {
		case <-client.Done():
			t.Fatal("Done before the session ended")
		default:
		}
		start := time.Now()
		require.NoError(t, server.Close())
		<-client.Done()
		require.Less(t, time.Since(start), time.Second)
		var ce *session.CloseError
		require.ErrorAs(t, client.Err(), &ce)
		require.True(t, ce.Remote)
		require.Equal(t, session.CodeNoError, ce.Code)
		require.ErrorIs(t, client.Err(), net.ErrClosed)

		// The local side's Done fired when it closed.
		<-server.Done()
		require.ErrorIs(t, server.Err(), net.ErrClosed)
	})
}

// TestSynctestDoneIdleTimeout: Done fires when an idle connection times out, with a timeout
// error, without any Read or Write in progress.
func TestSynctestDoneIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		conf := &Config{IdleTimeout: 5 * time.Second, KeepAlive: -1}
		client, server, ln := memPair(t, nw, conf)
		defer ln.Close()

		nw.SetDrop(func(from, to net.Addr, b []byte) bool { return true }) // the path goes dark
		start := time.Now()
		<-client.Done()
		require.Equal(t, 5*time.Second, time.Since(start).Round(time.Second))
		err := client.Err()
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "%v", err)
		require.ErrorIs(t, err, net.ErrClosed)
		<-server.Done()
	})
}
