package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"
)

// session is what this command needs of a *transport.Conn.
type session interface {
	net.Conn
	CloseWrite() error
	CloseWithError(code uint64, reason string) error
	ConnectionState() tls.ConnectionState
}

// pipe copies in to the session, half-closing it at EOF, and the session to
// out until the peer half-closes; then it closes the session, which waits
// until the peer has acknowledged everything written. It returns nil only if
// every byte of in was delivered and every byte the peer sent was written to
// out. An interrupt (ctx) closes the session and returns interruptedError.
func pipe(ctx context.Context, s session, in io.Reader, out io.Writer, sent, received meter) error {
	upc := make(chan error, 1)
	go func() {
		src := &trackingReader{r: countingReader{in, sent}}
		_, err := io.Copy(writerOnly{s}, src)
		if err != nil {
			if src.err != nil {
				upc <- fmt.Errorf("reading input: %w", err)
			} else {
				upc <- fmt.Errorf("sending: %w", err)
			}
			return
		}
		if err := s.CloseWrite(); err != nil {
			upc <- fmt.Errorf("closing the sending side: %w", err)
			return
		}
		upc <- nil
	}()
	downc := make(chan error, 1)
	go func() {
		src := &trackingReader{r: s}
		_, err := io.Copy(countingWriter{out, received}, src)
		if err != nil {
			if src.err != nil {
				err = fmt.Errorf("receiving: %w", err)
			} else {
				err = fmt.Errorf("writing output: %w", err)
			}
		}
		downc <- err
	}()

	// Wait for both directions; the first failure ends the session at once.
	// The receive side finishing first is normal (the peer half-closed): we
	// keep sending, as TLS 1.3 half-close allows.
	var upDone, downDone bool
	for !upDone || !downDone {
		select {
		case err := <-upc:
			upDone = true
			if err != nil {
				s.Close()
				return err
			}
		case err := <-downc:
			downDone = true
			if err != nil {
				s.Close()
				return err
			}
		case <-ctx.Done():
			closeOnInterrupt(s, downc, downDone)
			return &interruptedError{what: fmt.Sprintf("closed the session after sending %s and receiving %s",
				formatBytes(sent.Load()), formatBytes(received.Load()))}
		}
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	return nil
}

// interruptGrace bounds how long an interrupted session waits for the peer
// to close its side.
const interruptGrace = 2 * time.Second

// closeOnInterrupt ends a session the user interrupted as gracefully as the
// peer allows: half-close (TLS close_notify), give the peer a moment to
// close its side too, then Close. Closing at once would work for us, but
// the peer's own Close would then wait in vain for its last data to be
// acknowledged by a process that is gone.
func closeOnInterrupt(s session, downc <-chan error, downDone bool) {
	grace, cancel := context.WithTimeout(context.Background(), interruptGrace)
	defer cancel()
	half := make(chan struct{})
	go func() {
		// CloseWrite waits behind a Write blocked by flow control; the
		// timer bounds that too.
		s.CloseWrite()
		close(half)
	}()
	select {
	case <-half:
	case <-grace.Done():
	}
	if !downDone {
		select {
		case <-downc:
		case <-grace.Done():
		}
	}
	s.Close()
}

// trackingReader remembers whether a failure came from its reader, since
// io.Copy returns read and write errors alike.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// writerOnly hides ReadFrom, so io.Copy reads through trackingReader.
type writerOnly struct{ io.Writer }
