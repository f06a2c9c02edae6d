// Command tlsgram is the command-line face of the tlsgram library (TLS 1.3
// over UDP). It is the first thing most users run, so it follows the tools
// they already know: "serve" and "connect" behave like "ncat --ssl -l" and
// "ncat --ssl" (or "openssl s_server"/"s_client"), "relay" is a user-space
// stand-in for netem, "cert" makes a development PKI, and "demo" runs all of
// them in one process.
//
// The command uses only the public packages: transport for sessions and
// internal/impair/relay for the impairment relay, which the bench suite shares.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses. 2 is what the flag package uses for usage errors; 130 is the
// shell convention for "killed by SIGINT" (128+2), used when an interrupt cut
// a transfer short.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// env is what a subcommand may touch of the outside world; tests can replace
// every field.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stderrTTY reports whether stderr is a terminal: progress lines are
	// drawn only then. stdioTTY reports whether stdin or stdout is one: a
	// person typing or reading there does not want a line redrawn under
	// their text.
	stderrTTY, stdioTTY bool
	log                 *slog.Logger
}

type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	run     func(ctx context.Context, e *env, name string, args []string) error
}

var commands = []command{
	{"serve", "[-listen ADDR] [-cert FILE -key FILE] [-client-ca FILE] [-mode stdio|echo|discard] [-once]",
		"accept sessions: pipe one to stdin/stdout, or echo/discard for many clients", runServe},
	{"connect", connectSynopsis,
		"open a session and copy stdin to it and it to stdout", runConnect},
	{"cert", "-out DIR [-hosts a,b]",
		"write a development CA and a server certificate signed by it", runCert},
	{"relay", "-listen ADDR -to ADDR [impairment flags]",
		"forward UDP between clients and a server, losing, reordering, delaying datagrams", runRelay},
	{"demo", "[-size N] [impairment flags]",
		"run server, client (and relay) in one process and report what happened", runDemo},
	{"version", "[-json]",
		"print the module version, the Go version and the wire format version (also: tlsgram -version)", runVersion},
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	e := &env{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		stderrTTY: isTerminal(os.Stderr),
		stdioTTY:  isTerminal(os.Stdin) || isTerminal(os.Stdout),
	}
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(e.stderr, "tlsgram: unknown command %q (commands: %s; see 'tlsgram -h')\n", name, commandNames())
		return exitUsage
	}

	// The first interrupt cancels ctx: subcommands then close their sessions
	// properly. stop() restores the default disposition, so a second Ctrl-C
	// terminates the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	err := cmd.run(ctx, e, "tlsgram "+cmd.name, args[1:])
	return report(e.stderr, "tlsgram "+cmd.name, err)
}

// report prints err as one line and turns it into an exit status.
func report(w io.Writer, prefix string, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code := exitFailure
	var ue *usageError
	var ie *interruptedError
	switch {
	case errors.As(err, &ue):
		code = exitUsage
	case errors.As(err, &ie):
		code = exitInterrupted
	}
	var re *reportedError
	if errors.As(err, &re) {
		return code
	}
	fmt.Fprintf(w, "%s: %s\n", prefix, oneLine(explain(err)))
	return code
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "tlsgram: TLS 1.3 over UDP\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  tlsgram %s %s\n", c.name, c.args)
		fmt.Fprintf(w, "        %s\n", c.summary)
	}
	fmt.Fprintf(w, "\nEvery command takes -v (debug logging) and -h (its flags); commands that run\n"+
		"sessions take -stats (statistics at the end, on stderr), -json (the summary as JSON),\n"+
		"-progress and -interval, and the library's settings (-cc, -idle, ...) with its defaults.\n")
}

func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// usageError marks errors in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// interruptedError marks a run cut short by Ctrl-C: exit status 130.
type interruptedError struct{ what string }

func (e *interruptedError) Error() string { return "interrupted: " + e.what }

// reportedError is a failure already printed (serve's session lines): it
// only sets the exit status.
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// oneLine folds a multi-line message (x509 and TLS errors sometimes carry
// newlines) so every failure is exactly one line on stderr.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", "; ")
}
