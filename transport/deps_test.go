package transport

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportGraph keeps heavy dependencies out of the core library: only the subpackages
// tlsgramgrpc and tlsgramhttp (and examples) may pull in grpc, protobuf or x/net's HTTP/2, so a
// user of transport alone does not build them.
func TestImportGraph(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".", "../session/...", "../header", "../reassembly").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/tlsgram/tlsgram/session", "the listing is of the right packages")
	for _, d := range deps {
		for _, banned := range []string{"google.golang.org/", "golang.org/x/net/http2", "net/http"} {
			require.False(t, strings.HasPrefix(d, banned), "transport depends on %s", d)
		}
	}
}
