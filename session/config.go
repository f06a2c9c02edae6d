package session

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/session/congestion"
)

// Defaults for a zero Config field.
const (
	DefaultMaxDatagramSize  = 1452 // the most path MTU discovery probes for: Ethernet's 1500 less IPv6 and UDP
	DefaultMaxAckDelay      = 25 * time.Millisecond
	DefaultIdleTimeout      = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultKeepAlive        = 10 * time.Second
	DefaultInitialWindow    = 1 << 20
	DefaultMaxWindow        = 16 << 20
	DefaultSendBuffer       = 4 << 20

	// MaxDatagramSizeLimit is the largest UDP payload over IPv4 (65535 − 20 − 8).
	MaxDatagramSizeLimit = 65507

	// InitialMaxData is the flow-control limit each side may assume about its peer before the
	// peer's first MAX_DATA frame arrives (part of wire format v1). Receivers must accept it, so a
	// configured window is never smaller.
	InitialMaxData = 64 << 10
)

// Config tunes one connection. The zero value of every field means its default (see the
// Default* constants). A Config is copied by NewClient/NewServer and may be reused.
type Config struct {
	// MaxDatagramSize is the largest UDP payload the core produces. Default 1452, a 1500-byte
	// Ethernet MTU over IPv6. The core starts at 1200 bytes, the size every IPv4/IPv6 Internet path
	// carries, and probes up to MaxDatagramSize (DPLPMTUD, RFC 8899; see pmtud.go); 1200 turns
	// probing off. Larger values only make sense on loopback. Range 1200..65507.
	MaxDatagramSize int
	// MaxAckDelay is how long a receiver may delay an ACK (RFC 9000 §13.2.1). Default 25ms.
	MaxAckDelay time.Duration
	// IdleTimeout closes the connection when nothing was received for this long. Default 30s.
	IdleTimeout time.Duration
	// HandshakeTimeout closes the connection if SetHandshakeComplete was not called within this
	// long after creation. Default 10s.
	HandshakeTimeout time.Duration
	// KeepAlive sends a PING when nothing was received for this long, so idle connections survive
	// the idle timeout and NAT bindings stay open. Default 10s; negative disables.
	KeepAlive time.Duration
	// InitialWindow is the receive flow-control window, the bytes the peer may send beyond what the
	// application has read. Default 1 MiB, minimum 64 KiB. It grows automatically up to MaxWindow
	// when the application reads fast (auto-tuning).
	InitialWindow uint64
	// MaxWindow caps receive-window auto-tuning. Default 16 MiB.
	MaxWindow uint64
	// SendBuffer is the most written-but-unacknowledged stream bytes the core holds before
	// SendSpace reports 0. Default 4 MiB. Below that, the buffer follows the path: four congestion
	// windows, at least 256 KiB.
	SendBuffer int
	// Congestion builds the congestion controller. Nil means BBR (congestion.NewBBR);
	// congestion.NewCubic gives CUBIC with HyStart++ (RFC 9438, RFC 9406), congestion.NewNewReno
	// RFC 9002 §7's NewReno.
	Congestion func(maxDatagramSize int) congestion.Controller
	// DisablePacing sends whole congestion windows at once. Default false: pacing (RFC 9002 §7.7) is on.
	DisablePacing bool
	// Rand is where the core takes its secrets from: the seed of the packet numbers it skips to
	// catch optimistic ACKs (RFC 9000 §21.4), which must be unpredictable to the peer. Nil means
	// crypto/rand.Reader. The core reads it only in NewClient/NewServer; the simulated network
	// passes a seeded reader so that a run replays exactly.
	Rand io.Reader
	// DisablePathMTUDiscovery sends MaxDatagramSize datagrams from the start. Default false: the
	// core starts at 1200 bytes and probes up to MaxDatagramSize (DPLPMTUD, RFC 8899), falling
	// back when the path stops carrying the size found. Set it only where the path's MTU is known,
	// such as loopback.
	DisablePathMTUDiscovery bool
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	if d.MaxDatagramSize == 0 {
		d.MaxDatagramSize = DefaultMaxDatagramSize
	}
	if d.MaxAckDelay == 0 {
		d.MaxAckDelay = DefaultMaxAckDelay
	}
	if d.IdleTimeout == 0 {
		d.IdleTimeout = DefaultIdleTimeout
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if d.KeepAlive == 0 {
		d.KeepAlive = DefaultKeepAlive
	}
	if d.InitialWindow == 0 {
		d.InitialWindow = DefaultInitialWindow
	}
	if d.MaxWindow == 0 {
		d.MaxWindow = DefaultMaxWindow
	}
	if d.MaxWindow < d.InitialWindow {
		d.MaxWindow = d.InitialWindow
	}
	if d.SendBuffer == 0 {
		d.SendBuffer = DefaultSendBuffer
	}
	if d.Congestion == nil {
		d.Congestion = congestion.NewBBR
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	return d
}

// Validate reports the first field of c that is out of range, as an error naming the field.
// A nil Config is valid.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	switch {
	case c.MaxDatagramSize != 0 && (c.MaxDatagramSize < header.MinInitialDatagramSize || c.MaxDatagramSize > MaxDatagramSizeLimit):
		return fmt.Errorf("tlsgram: Config.MaxDatagramSize %d out of range [%d, %d]", c.MaxDatagramSize, header.MinInitialDatagramSize, MaxDatagramSizeLimit)
	case c.MaxAckDelay < 0 || c.MaxAckDelay > time.Second:
		return fmt.Errorf("tlsgram: Config.MaxAckDelay %v out of range [0, 1s]", c.MaxAckDelay)
	case c.IdleTimeout < 0:
		return errors.New("tlsgram: Config.IdleTimeout is negative")
	case c.HandshakeTimeout < 0:
		return errors.New("tlsgram: Config.HandshakeTimeout is negative")
	case c.InitialWindow != 0 && c.InitialWindow < InitialMaxData:
		return fmt.Errorf("tlsgram: Config.InitialWindow %d below the minimum %d", c.InitialWindow, InitialMaxData)
	case c.InitialWindow > 1<<40 || c.MaxWindow > 1<<40:
		return errors.New("tlsgram: Config window above 1 TiB")
	case c.SendBuffer < 0 || c.SendBuffer > 1<<30:
		return fmt.Errorf("tlsgram: Config.SendBuffer %d out of range [0, 1 GiB]", c.SendBuffer)
	}
	return nil
}
