package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/session"
)

// TestCloseWithErrorLoopback: the peer reads what was written before CloseWithError, then its
// Read, Write and Err report the application's code and reason, as an *ApplicationError that
// also matches net.ErrClosed.
func TestCloseWithErrorLoopback(t *testing.T) {
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	client, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	server := <-conns

	err = client.CloseWithError(MaxApplicationCode+1, "too big")
	require.Error(t, err)
	require.NoError(t, client.Err(), "a rejected code leaves the connection open")

	_, err = client.Write([]byte("last words"))
	require.NoError(t, err)
	require.NoError(t, client.CloseWithError(42, "going away"))

	got := make([]byte, len("last words"))
	_, err = io.ReadFull(server, got)
	require.NoError(t, err)
	require.Equal(t, "last words", string(got))
	_, err = server.Read(got)
	var ae *ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, ApplicationError{Remote: true, Code: 42, Reason: "going away"}, *ae)
	require.ErrorIs(t, err, net.ErrClosed)
	require.NotErrorIs(t, err, io.EOF)
	require.Contains(t, err.Error(), "the peer closed the connection with application code 42: going away")

	_, err = server.Write([]byte("too late"))
	require.ErrorAs(t, err, &ae)
	<-server.Done()
	require.ErrorAs(t, server.Err(), &ae)
	require.True(t, ae.Remote)

	<-client.Done()
	require.ErrorAs(t, client.Err(), &ae)
	require.Equal(t, ApplicationError{Code: 42, Reason: "going away"}, *ae)
	require.ErrorIs(t, client.CloseWithError(1, ""), net.ErrClosed)
	require.NoError(t, server.Close())
}

// TestSessionCloseCodesInWords: the session's own close codes read as words, not only hex.
func TestSessionCloseCodesInWords(t *testing.T) {
	err := &session.CloseError{Remote: true, Code: session.CodeHandshakeTimeout, Reason: "handshake timeout"}
	require.Equal(t, "tlsgram: the peer closed the connection: handshake timeout: handshake timeout (code 0x5)", err.Error())
	require.Equal(t, "tlsgram: the peer closed the connection", (&session.CloseError{Remote: true}).Error())
}

// TestAcceptContextLoopback: AcceptContext returns when its context ends, leaves the listener
// open, and returns a connection that completes later to the next call.
func TestAcceptContextLoopback(t *testing.T) {
	defer checkLeaks(t)()
	ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(t), nil)
	require.NoError(t, err)
	defer ln.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	c, err := ln.AcceptContext(ctx)
	require.Nil(t, c)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())

	cancelled, cancel2 := context.WithCancel(t.Context())
	cancel2()
	_, err = ln.AcceptContext(cancelled)
	require.ErrorIs(t, err, context.Canceled)

	dialed := make(chan *Conn, 1)
	go func() {
		c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
		if err == nil {
			dialed <- c
		}
		close(dialed)
	}()
	server, err := ln.AcceptContext(t.Context())
	require.NoError(t, err)
	client := <-dialed
	require.NotNil(t, client)
	_, err = client.Write([]byte("hi"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)
	require.NoError(t, client.Close())
	require.NoError(t, server.Close())

	require.NoError(t, ln.Close())
	_, err = ln.AcceptContext(t.Context())
	require.ErrorIs(t, err, net.ErrClosed)
	var nilConn net.Conn
	nilConn, err = ln.Accept()
	require.Error(t, err)
	require.True(t, nilConn == nil, "Accept must return a nil interface, not a nil *Conn")
}

// TestDeadlineExceededLoopback: over real sockets, a Read deadline fails with an error matching
// os.ErrDeadlineExceeded that is a net.Error with Timeout() true.
func TestDeadlineExceededLoopback(t *testing.T) {
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	client, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	defer client.Close()
	server := <-conns
	defer server.Close()
	require.NoError(t, client.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	_, err = client.Read(make([]byte, 1))
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "%v", err)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
}
