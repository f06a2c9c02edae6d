package transport

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/session"
)

var updateSettings = flag.Bool("update", false, "rewrite the README's settings table and doc.go's Defaults section from the settings table")

// Where the settings table is rendered.
const (
	readmePath     = "../README.md"
	docPath        = "doc.go"
	readmeBegin    = "<!-- settings:begin (generated from transport/settings.go: go test ./transport -run TestSettings -update) -->"
	readmeEnd      = "<!-- settings:end -->"
	docBegin       = "// # Defaults\n"
	docEnd         = "package transport\n"
	settingsSource = "transport/settings.go"
)

// readmeTable renders the settings table for the README.
func readmeTable() string {
	var b strings.Builder
	b.WriteString("| `Config` field | default | what it does | `tlsgram` flag |\n|---|---|---|---|\n")
	for _, s := range Settings() {
		flag := ""
		if s.Flag != "" {
			flag = "`-" + s.Flag + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Field, s.Doc, s.Meaning, flag)
	}
	return b.String()
}

// docSection renders the Defaults section of the package documentation.
func docSection() string {
	var b strings.Builder
	b.WriteString(docBegin)
	b.WriteString("//\n// A nil *Config, and a zero field of one, mean the defaults below (Settings returns them, with\n" +
		"// what each does; the tlsgram command's flag is in parentheses):\n//\n")
	for _, s := range Settings() {
		flag := ""
		if s.Flag != "" {
			flag = " (-" + s.Flag + ")"
		}
		fmt.Fprintf(&b, "//   - %s: %s%s\n", s.Field, s.Doc, flag)
	}
	return b.String()
}

// TestSettings checks that the settings table covers every Config field with a default of the
// right type and value, and that the field comments, doc.go and the README say the same.
// With -update it rewrites the README's table and doc.go's Defaults section instead of
// comparing them.
func TestSettings(t *testing.T) {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	typ := reflect.TypeFor[Config]()
	rows := map[string]Setting{}
	for _, s := range Settings() {
		if _, dup := rows[s.Field]; dup {
			fail("%s: two rows for Config.%s", settingsSource, s.Field)
		}
		rows[s.Field] = s
		f, ok := typ.FieldByName(s.Field)
		if !ok {
			fail("%s: row %q names no field of transport.Config: remove it or fix the name", settingsSource, s.Field)
			continue
		}
		if s.Default != nil && reflect.TypeOf(s.Default) != f.Type {
			fail("%s: row %s: Default is a %T, Config.%s is a %s", settingsSource, s.Field, s.Default, s.Field, f.Type)
		}
		if s.Doc == "" || s.Meaning == "" {
			fail("%s: row %s: Doc and Meaning must be set", settingsSource, s.Field)
		}
	}
	var order []string
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		order = append(order, f.Name)
		if _, ok := rows[f.Name]; !ok {
			fail("%s: Config.%s has no row: add {%q, default, \"Doc\", \"meaning\", \"flag or empty\"} to settings", settingsSource, f.Name, f.Name)
		}
	}
	var tableOrder []string
	for _, s := range Settings() {
		if _, ok := typ.FieldByName(s.Field); ok {
			tableOrder = append(tableOrder, s.Field)
		}
	}
	if len(problems) == 0 && !reflect.DeepEqual(order, tableOrder) {
		fail("%s: rows are not in Config's field order:\n  table:  %v\n  Config: %v", settingsSource, tableOrder, order)
	}

	// The defaults the code applies are the table's. Transport's own fields get them in
	// withDefaults; the session's are left zero here and defaulted by the session package.
	d := (*Config)(nil).withDefaults()
	dv := reflect.ValueOf(d)
	sessionFields := map[string]bool{}
	for f := range reflect.TypeFor[session.Config]().Fields() {
		sessionFields[f.Name] = true
	}
	for _, s := range Settings() {
		fv := dv.FieldByName(s.Field)
		if !fv.IsValid() || s.Default == nil {
			continue
		}
		got := fv.Interface()
		if fv.IsZero() && sessionFields[s.Field] {
			continue // applied by session.Config (its Default* constants, which the row uses)
		}
		if !reflect.DeepEqual(got, s.Default) {
			fail("%s: row %s: Default %v, but a nil Config gets %v (transport/config.go withDefaults)", settingsSource, s.Field, s.Default, got)
		}
	}

	// Field comments: each says "Default <Doc>".
	for file, fields := range map[string]map[string]string{
		"transport/config.go": fieldComments(t, "config.go", "Config"),
		"session/config.go":   fieldComments(t, "../session/config.go", "Config"),
	} {
		for _, s := range Settings() {
			c, ok := fields[s.Field]
			if !ok {
				continue // session.Config has only the core's share
			}
			if file == "session/config.go" {
				if sf, ok := reflect.TypeFor[session.Config]().FieldByName(s.Field); !ok || reflect.TypeOf(s.Default) != sf.Type {
					continue // a different type in the core (Congestion is a constructor there)
				}
			}
			if !strings.Contains(c, "Default "+s.Doc) {
				fail("%s: the comment of Config.%s must say \"Default %s\" (as the row in %s has it)", file, s.Field, s.Doc, settingsSource)
			}
		}
	}

	if len(problems) > 0 {
		t.Fatalf("the settings table and the code disagree:\n- %s", strings.Join(problems, "\n- "))
	}

	// README and doc.go.
	checkGenerated(t, readmePath, readmeBegin+"\n", readmeEnd, readmeBegin+"\n"+readmeTable())
	checkGenerated(t, docPath, docBegin, docEnd, docSection())
}

// fieldComments returns the doc comment of each field of struct name in file.
func fieldComments(t *testing.T, file, name string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	require.NoError(t, err)
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != name {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fl := range st.Fields.List {
			for _, id := range fl.Names {
				// Joined into one line: a default may wrap.
				out[id.Name] = strings.Join(strings.Fields(fl.Doc.Text()), " ")
			}
		}
		return false
	})
	return out
}

// checkGenerated compares the text of file from begin up to end with want (which starts with
// begin), or rewrites it with -update.
func checkGenerated(t *testing.T, file, begin, end, want string) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, begin)
	j := -1
	if i >= 0 {
		j = strings.Index(s[i:], end)
	}
	if i < 0 || j < 0 {
		t.Fatalf("%s: the generated settings section (from %q to %q) is missing; put the two markers in and run go test ./transport -run TestSettings -update", file, strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	got := s[i : i+j]
	if got == want {
		return
	}
	if *updateSettings {
		require.NoError(t, os.WriteFile(file, []byte(s[:i]+want+s[i+j:]), 0o644))
		t.Logf("rewrote the settings section of %s", file)
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	var diff []string
	for k := 0; k < max(len(gl), len(wl)); k++ {
		var g, w string
		if k < len(gl) {
			g = gl[k]
		}
		if k < len(wl) {
			w = wl[k]
		}
		if g != w {
			diff = append(diff, fmt.Sprintf("  line %d:\n    has:  %s\n    want: %s", k+1, g, w))
		}
	}
	t.Fatalf("%s disagrees with the settings table in %s (run go test ./transport -run TestSettings -update):\n%s", file, settingsSource, strings.Join(diff, "\n"))
}

// TestCongestionText: every controller has a name that round-trips through text (the tlsgram
// command's -cc), and an unknown name is an error that lists the known ones.
func TestCongestionText(t *testing.T) {
	names := CongestionNames()
	require.Equal(t, "bbr", names[0], "the default comes first")
	for i, name := range names {
		var c Congestion
		require.NoError(t, c.UnmarshalText([]byte(strings.ToUpper(name))))
		require.Equal(t, Congestion(i), c)
		b, err := c.MarshalText()
		require.NoError(t, err)
		require.Equal(t, name, string(b))
		require.Equal(t, name, c.String())
		require.NoError(t, (&Config{Congestion: c}).validate())
	}
	var c Congestion
	err := c.UnmarshalText([]byte("vegas"))
	require.ErrorContains(t, err, strings.Join(names, ", "))
	bad := Congestion(len(names))
	require.Error(t, (&Config{Congestion: bad}).validate())
	_, err = bad.MarshalText()
	require.Error(t, err)
}
