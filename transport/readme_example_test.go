package transport_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readmeProgram turns example_test.go into the complete program the README shows: its imports,
// Example's body as main, and the helper that makes the TLS configs, so that a reader can copy
// it and run it.
func readmeProgram(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	src := string(b)
	i := strings.Index(src, "import (")
	j := strings.Index(src, "\n)\n")
	require.True(t, i >= 0 && j > i, "example_test.go: no import block")
	imports := src[i : j+3]
	k := strings.Index(src, "func Example() {\n")
	l := strings.Index(src, "\t// Output:")
	m := strings.Index(src, "// exampleTLSConfigs")
	require.True(t, k > j && l > k && m > l, "example_test.go: Example, its Output comment and exampleTLSConfigs expected in that order")
	body := src[k+len("func Example() {\n") : l]
	return "package main\n\n" + imports + "\nfunc main() {\n" + body + "}\n\n" + src[m:]
}

// TestReadmeExampleIsTheTestedExample: the README's example is Example (which runs as a test)
// as a complete program, helper included: nothing in it is left for the reader to guess.
func TestReadmeExampleIsTheTestedExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	want := readmeProgram(t)
	require.Contains(t, string(readme), "```go\n"+want+"```\n",
		"README.md must show this program (Example of transport/example_test.go, as main) in a go block:\n%s", want)
}
