package transport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/internal/impair/relay"
	"github.com/tlsgram/tlsgram/session"
)

// transferThrough dials ln through a relay with loss both ways, sends size bytes, reads them on
// the accepted side, and ends the connection with CloseWithError(7, "done"). It returns both
// conns once both have finished (their drivers stopped).
func transferThrough(t *testing.T, ln *Listener, conns <-chan *Conn, loss float64, size int, conf *Config) (client, server *Conn) {
	t.Helper()
	// The relay decides each datagram's fate by its index, and the client's CLOSE is the last
	// one: with seeds 3 and 4 and 1452-byte datagrams (path MTU discovery) it was lost in about
	// half the runs, and nothing retransmits a CLOSE to a peer that sends nothing (RFC 9000
	// §10.2.1), so the server never saw the code. These seeds lose none near the end.
	up, down := impair.Config{Loss: loss, Seed: 5}, impair.Config{Loss: loss, Seed: 6}
	relay, err := relay.NewRelay("127.0.0.1:0", ln.Addr().String(), up, down)
	require.NoError(t, err)
	require.NoError(t, relay.Start())
	defer relay.Close()

	client, err = Dial(t.Context(), "udp4", relay.Addr().String(), clientTLS(t), conf)
	require.NoError(t, err)
	server = <-conns
	read := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, server, int64(size))
		read <- err
	}()
	_, err = client.Write(make([]byte, size))
	require.NoError(t, err)
	require.NoError(t, <-read)
	require.NoError(t, client.CloseWithError(7, "done"))
	// The seeds above keep the CLOSE out of the relay's losses only while the datagram count
	// stays where it was; when it is lost anyway, the server, which sends nothing, would wait for
	// its idle timeout. A closing endpoint answers what it receives with its CLOSE again (RFC
	// 9000 §10.2.1), so the server writes a byte every 50 ms until it has learnt of the close.
	go func() {
		for {
			if _, err := server.Write([]byte{0}); err != nil {
				return
			}
			select {
			case <-server.driverDone:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	for _, c := range []*Conn{client, server} {
		select {
		case <-c.driverDone:
		case <-time.After(10 * time.Second):
			t.Fatal("connection did not finish")
		}
	}
	return client, server
}

// TestQlogTracer: with TLSGRAM_QLOGDIR set, each connection of a lossy transfer writes a qlog
// file of valid NDJSON (every line decodes), and together they name every event kind; the
// close carries the application's code, seen from both sides.
func TestQlogTracer(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(QlogDirEnv, dir)
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	transferThrough(t, ln, conns, 0.05, 2<<20, nil)

	files, err := filepath.Glob(filepath.Join(dir, "*.qlog.ndjson"))
	require.NoError(t, err)
	require.Len(t, files, 2, "one file per connection")
	names := map[string]bool{}
	closes := map[string]map[string]any{} // vantage point → connection_closed data
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		var vantage string
		for line := 0; sc.Scan(); line++ {
			var obj map[string]any
			require.NoError(t, json.Unmarshal(sc.Bytes(), &obj), "%s line %d: %s", f, line+1, sc.Text())
			if line == 0 {
				require.Equal(t, "NDJSON", obj["qlog_format"])
				vantage = obj["trace"].(map[string]any)["vantage_point"].(map[string]any)["type"].(string)
				continue
			}
			name := obj["name"].(string)
			names[name] = true
			if name == "connectivity:connection_closed" {
				closes[vantage] = obj["data"].(map[string]any)
			}
		}
		require.NoError(t, sc.Err())
		require.True(t, strings.HasSuffix(strings.TrimSpace(string(b)), `"name":"tlsgram:connection_finished","data":{}}`), "%s: last event", f)
	}
	for _, k := range session.TraceKinds {
		require.True(t, names[qlogNames[k]], "no %s (%v) event in %v", qlogNames[k], k, names)
		require.True(t, strings.HasSuffix(qlogNames[k], ":"+k.String()))
	}
	require.Equal(t, map[string]any{"owner": "local", "application_code": 7.0, "reason": "done"}, closes["client"])
	require.Equal(t, map[string]any{"owner": "remote", "application_code": 7.0, "reason": "done"}, closes["server"])
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of two connections' loggers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSlogTracer: Config.Tracer = SlogTracer logs a connection's life to a slog.Logger: at Info
// the handshake and the close with its reason, at Debug the packets as well.
func TestSlogTracer(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			var out syncBuffer
			logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: level}))
			conf := &Config{Tracer: SlogTracer(logger)}
			ln, conns := listenLoopback(t, "udp4", conf)
			defer ln.Close()
			transferThrough(t, ln, conns, 0, 64<<10, conf)

			msgs := map[string]int{}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var rec map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
				msgs[rec["msg"].(string)]++
				if rec["msg"] == "tlsgram connection_closed" {
					require.Contains(t, rec["reason"], "application code 7: done")
				}
			}
			for _, m := range []string{"handshake_started", "handshake_done", "connection_closed", "connection_finished"} {
				require.Equal(t, 2, msgs["tlsgram "+m], "%s: client and server, in %v", m, msgs)
			}
			if level == slog.LevelDebug {
				require.Positive(t, msgs["tlsgram packet_sent"])
				require.Positive(t, msgs["tlsgram packet_received"])
			} else {
				require.Zero(t, msgs["tlsgram packet_sent"], "packets are Debug")
			}
		})
	}
}

// TestMetricsMove: the process-wide counters grow as traffic flows, live connections count
// while they run, and a finished connection's counters stay in the totals.
func TestMetricsMove(t *testing.T) {
	before := ReadMetrics()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	require.Equal(t, before.ListenersOpen+1, ReadMetrics().ListenersOpen)

	client, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	server := <-conns
	during := ReadMetrics()
	require.GreaterOrEqual(t, during.ConnectionsOpened, before.ConnectionsOpened+2)
	require.GreaterOrEqual(t, during.ConnectionsActive, 2)
	require.Greater(t, during.Accepted, before.Accepted)

	const size = 1 << 20
	go func() { _, _ = io.Copy(io.Discard, server) }()
	_, err = client.Write(make([]byte, size))
	require.NoError(t, err)
	require.NoError(t, client.Close())
	<-client.driverDone
	after := ReadMetrics()
	require.GreaterOrEqual(t, after.StreamBytesSent-during.StreamBytesSent, uint64(size), "the client's bytes count after it finished")
	require.Greater(t, after.DatagramsSent, during.DatagramsSent+size/DefaultMaxDatagramSize)
	require.Greater(t, after.DatagramsReceived, during.DatagramsReceived)
	require.Greater(t, after.BytesReceived, during.BytesReceived+size)

	require.NoError(t, ln.Close())
	require.Equal(t, before.ListenersOpen, ReadMetrics().ListenersOpen)
	require.GreaterOrEqual(t, ReadMetrics().Accepted, after.Accepted, "a closed listener's counts stay")
}
