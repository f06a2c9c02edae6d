package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRun runs the example: a unary call the server saw over TLS 1.3 with ALPN h2, and a
// stream that followed a status change.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, "127.0.0.1:0", &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`server: /grpc.health.v1.Health/Check over TLS 1.3, ALPN "h2"`,
		"client: Check says SERVING",
		"client: Watch says SERVING",
		"client: Watch says NOT_SERVING",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
