package tlsgramexpvar

import (
	"encoding/json"
	"expvar"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/testcert"
	"github.com/tlsgram/tlsgram/transport"
)

// TestPublish: the published variable is transport.ReadMetrics as JSON, read afresh each time,
// so its counters move with traffic; a second Publish of the name fails.
func TestPublish(t *testing.T) {
	require.NoError(t, Publish("tlsgram_test"))
	require.Error(t, Publish("tlsgram_test"))
	read := func() transport.Metrics {
		var m transport.Metrics
		require.NoError(t, json.Unmarshal([]byte(expvar.Get("tlsgram_test").String()), &m))
		return m
	}
	before := read()

	serverTLS, clientTLS := testcert.Configs()
	ln, err := transport.Listen("udp4", "127.0.0.1:0", serverTLS, nil)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		}
	}()
	c, err := transport.Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS, nil)
	require.NoError(t, err)
	_, err = c.Write(make([]byte, 256<<10))
	require.NoError(t, err)
	require.NoError(t, c.Close())

	after := read()
	require.Equal(t, before.ConnectionsOpened+2, after.ConnectionsOpened)
	require.Greater(t, after.DatagramsSent, before.DatagramsSent+200)
	require.Equal(t, before.Accepted+1, after.Accepted)
}
