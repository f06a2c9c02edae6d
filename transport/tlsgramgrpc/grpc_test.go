package tlsgramgrpc

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/testcert"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

// authSeen records the TLS auth info the server saw on each call.
type authSeen chan credentials.TLSInfo

func (a authSeen) record(ctx context.Context) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		a <- info
	}
}

func (a authSeen) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	a.record(ctx)
	return h(ctx, req)
}

func (a authSeen) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	a.record(ss.Context())
	return h(srv, ss)
}

// TestGRPC runs grpc's health service over tlsgram on loopback: a unary call (Check) and a
// server stream (Watch) that follows status changes, with the TLS state visible on both sides.
func TestGRPC(t *testing.T) {
	serverTLS, clientTLS := testcert.Configs()
	ln, err := Listen("udp4", "127.0.0.1:0", serverTLS, nil)
	require.NoError(t, err)
	seen := make(authSeen, 16)
	s := grpc.NewServer(ServerOption(), grpc.UnaryInterceptor(seen.unary), grpc.StreamInterceptor(seen.stream))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		s.GracefulStop()
		require.NoError(t, <-served)
	}()

	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cc, err := NewClient("localhost:"+port, clientTLS, nil)
	require.NoError(t, err)
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	var p peer.Peer
	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "svc"}, grpc.Peer(&p))
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status)
	clientInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	require.True(t, ok, "client auth info %T", p.AuthInfo)
	require.Equal(t, uint16(tls.VersionTLS13), clientInfo.State.Version)
	require.Equal(t, "h2", clientInfo.State.NegotiatedProtocol)
	require.NotEmpty(t, clientInfo.State.PeerCertificates)
	serverInfo := <-seen
	require.Equal(t, uint16(tls.VersionTLS13), serverInfo.State.Version)
	require.True(t, serverInfo.State.HandshakeComplete)
	require.Equal(t, credentials.PrivacyAndIntegrity, serverInfo.SecurityLevel)

	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.Status)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	next, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, next.Status)
	require.Equal(t, uint16(tls.VersionTLS13), (<-seen).State.Version, "the stream's server side saw TLS")
	cancel()
}

// TestCredentialsRefusePlainConns: the credentials do not let grpc run over a connection that
// tlsgram did not secure.
func TestCredentialsRefusePlainConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_, _, err := NewCredentials().ServerHandshake(a)
	require.ErrorContains(t, err, "not a tlsgram connection")
	_, _, err = NewCredentials().ClientHandshake(t.Context(), "x", b)
	require.Error(t, err)
}

func TestTargetAddr(t *testing.T) {
	require.Equal(t, "h:1", targetAddr("dns:///h:1"))
	require.Equal(t, "h:1", targetAddr("h:1"))
	_, err := NewClient("no-port", &tls.Config{}, nil)
	require.Error(t, err)
}
