package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRun runs the example: it must speak HTTP/2 over TLS 1.3 and shut down cleanly.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, "127.0.0.1:0", &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`server said: hello over HTTP/2.0, ALPN "h2"`, `client saw: HTTP/2.0, TLS 1.3, ALPN "h2"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
