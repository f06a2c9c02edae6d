// Command grpc serves gRPC over tlsgram and calls itself: grpc-go's server on a tlsgram
// listener, a client from tlsgramgrpc.NewClient, and grpc's standard health service (so no
// protoc-generated code is needed), with a unary call and a server stream. Run it with
//
//	go run ./examples/grpc
//
// It prints what the server saw of each call's TLS connection and what the client received.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"github.com/tlsgram/tlsgram/internal/testcert"
	"github.com/tlsgram/tlsgram/transport/tlsgramgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "UDP address to serve on")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr string, out io.Writer) error {
	serverTLS, clientTLS := testcert.Configs() // a self-signed certificate for localhost

	// Server: a tlsgram listener, and a grpc.Server that takes its connections as TLS ones.
	ln, err := tlsgramgrpc.Listen("udp", addr, serverTLS, nil)
	if err != nil {
		return err
	}
	logTLS := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				fmt.Fprintf(out, "server: %s over %s, ALPN %q\n", info.FullMethod, tls.VersionName(ti.State.Version), ti.State.NegotiatedProtocol)
			}
		}
		return h(ctx, req)
	}
	s := grpc.NewServer(tlsgramgrpc.ServerOption(), grpc.UnaryInterceptor(logTLS))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	hs.SetServingStatus("example", healthpb.HealthCheckResponse_SERVING)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		s.GracefulStop()
		<-served
	}()

	// Client.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cc, err := tlsgramgrpc.NewClient("localhost:"+port, clientTLS, nil)
	if err != nil {
		return err
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)

	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "example"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "client: Check says %s\n", resp.Status)

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	stream, err := client.Watch(wctx, &healthpb.HealthCheckRequest{Service: "example"})
	if err != nil {
		return err
	}
	for _, next := range []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_NOT_SERVING, -1} {
		update, err := stream.Recv()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "client: Watch says %s\n", update.Status)
		if next >= 0 {
			hs.SetServingStatus("example", next)
		}
	}
	return nil
}
