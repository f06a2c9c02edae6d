// Package tlsgramgrpc runs gRPC (google.golang.org/grpc) over tlsgram, with no glue in the
// application: a grpc.Server serves a transport.Listener, and a client connects with NewClient.
// Both sides see the connection's TLS state as credentials.TLSInfo (peer.FromContext), as with
// grpc's own TLS credentials.
//
// A server:
//
//	ln, err := tlsgramgrpc.Listen("udp", ":50051", tlsConf, nil)
//	s := grpc.NewServer(tlsgramgrpc.ServerOption())
//	pb.RegisterGreeterServer(s, &server{})
//	err = s.Serve(ln)
//
// A client:
//
//	cc, err := tlsgramgrpc.NewClient("example.com:50051", tlsConf, nil)
//
// This package is the only part of the module that imports grpc: package transport does not.
package tlsgramgrpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/tlsgram/tlsgram/transport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ProtoHTTP2 is the ALPN protocol gRPC runs on (RFC 9113 §3.2).
const ProtoHTTP2 = "h2"

// Listen is transport.Listen with tlsConf offering "h2" in ALPN, as gRPC clients expect.
func Listen(network, address string, tlsConf *tls.Config, conf *transport.Config) (*transport.Listener, error) {
	return transport.Listen(network, address, withH2(tlsConf), conf)
}

// ServerOption makes a grpc.Server take the tlsgram connections its listener accepts as
// secure and report their TLS state: pass it to grpc.NewServer and serve a transport.Listener.
func ServerOption() grpc.ServerOption { return grpc.Creds(NewCredentials()) }

// NewClient is grpc.NewClient for a server on tlsgram: it dials target's addresses with
// transport.Dial and tlsConf (whose ServerName defaults to target's host, so the certificate is
// checked against the name the user gave rather than the address it resolved to). opts are
// passed on to grpc.NewClient.
func NewClient(target string, tlsConf *tls.Config, conf *transport.Config, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	tc := withH2(tlsConf)
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(targetAddr(target))
		if err != nil {
			return nil, fmt.Errorf("tlsgramgrpc: target %q: %w", target, err)
		}
		tc.ServerName = host
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		return transport.Dial(ctx, "udp", addr, tc, conf)
	}
	return grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithContextDialer(dial),
		grpc.WithTransportCredentials(NewCredentials()),
	}, opts...)...)
}

// targetAddr strips a gRPC target's resolver scheme ("dns:///host:port") from its address.
func targetAddr(target string) string {
	if i := strings.Index(target, ":///"); i >= 0 {
		return target[i+len(":///"):]
	}
	return target
}

// withH2 clones c with "h2" as its ALPN protocol, if it has none.
func withH2(c *tls.Config) *tls.Config {
	c = c.Clone()
	if len(c.NextProtos) == 0 {
		c.NextProtos = []string{ProtoHTTP2}
	}
	return c
}

// NewCredentials returns gRPC transport credentials for connections that tlsgram has already
// secured: the TLS handshake ran when transport.Dial or Listener.Accept returned the
// connection, so the handshake methods only hand grpc the connection's TLS state. A connection
// that is not a *transport.Conn is refused: grpc would otherwise send in the clear.
func NewCredentials() credentials.TransportCredentials { return creds{} }

type creds struct{}

func (creds) ClientHandshake(_ context.Context, _ string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return handshake(raw)
}

func (creds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return handshake(raw)
}

func handshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, ok := raw.(*transport.Conn)
	if !ok {
		return nil, nil, fmt.Errorf("tlsgramgrpc: %T is not a tlsgram connection (dial with NewClient, serve a transport.Listener)", raw)
	}
	info := credentials.TLSInfo{
		State:          c.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}
	return c, info, nil
}

func (creds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (creds) Clone() credentials.TransportCredentials { return creds{} }

// OverrideServerName is unused by grpc (deprecated there); the server name is tlsConf's.
func (creds) OverrideServerName(string) error { return nil }
