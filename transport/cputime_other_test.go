//go:build !unix

package transport

import (
	"testing"
	"time"
)

// processCPU is zero where getrusage does not exist: the idle-CPU bound is then not checked.
func processCPU(t testing.TB) time.Duration {
	t.Log("no process CPU time on this platform: the idle-CPU bound is not checked")
	return 0
}
