package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/tlsgram/tlsgram/header"
)

const versionDescription = `
Prints the tlsgram module version (and the VCS revision it was built from,
when the build recorded one), the Go version it was built with, and the wire
format version it speaks (header.Version1): two tlsgram programs talk only if
their wire versions match.`

// versionInfo is what "tlsgram version" prints; with -json, under these keys.
type versionInfo struct {
	Module   string `json:"module"`             // module path
	Version  string `json:"version"`            // module version; "(devel)" when built from a checkout
	Revision string `json:"revision,omitempty"` // VCS revision, "+dirty" if modified
	Go       string `json:"go"`                 // Go toolchain version
	Platform string `json:"platform"`           // GOOS/GOARCH
	Wire     string `json:"wire"`               // wire format version, as on the wire (hex)
}

func buildVersion() versionInfo {
	v := versionInfo{Module: "github.com/tlsgram/tlsgram", Version: "(unknown)", Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Wire: fmt.Sprintf("v1 (0x%08x)", header.Version1)}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if v.Revision != "" && dirty {
		v.Revision += "+dirty"
	}
	return v
}

func runVersion(_ context.Context, e *env, name string, args []string) error {
	f := newFlags(e, name, "[-json]", versionDescription, false)
	asJSON := f.Bool("json", false, "print JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (see '%s -h')", pos[0], name)
	}
	v := buildVersion()
	if *asJSON {
		return writeJSON(e.stdout, v)
	}
	rev := ""
	if v.Revision != "" {
		rev = ", revision " + v.Revision
	}
	fmt.Fprintf(e.stdout, "tlsgram %s %s%s\n", v.Module, v.Version, rev)
	fmt.Fprintf(e.stdout, "built with %s for %s\n", v.Go, v.Platform)
	fmt.Fprintf(e.stdout, "wire format %s\n", v.Wire)
	return nil
}

// writeJSON writes v indented, as iperf3 -J does.
func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
