package contenders

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/tlsgram/tlsgram/bench"
)

// tlsTCP is Go's crypto/tls 1.3 over the kernel's TCP: what most users
// would use instead. TCP's segment size is clamped with TCP_MAXSEG so that
// it sends the same Internet-sized packets as the UDP contenders; without
// the clamp, loopback's 64 KiB MTU lets TCP move 45× larger segments
// (the optional "tls13-tcp-jumbo" contender shows that case, labelled).
type tlsTCP struct {
	name string
	mss  int // 0: leave the kernel's choice (loopback: ~65 kB)
	opt  bool
}

func init() {
	bench.Register(70, tlsTCP{name: "tls13-tcp", mss: tcpMSS})
	bench.Register(71, tlsTCP{name: "tls13-tcp-jumbo", opt: true})
}

// tcpMSS makes TCP send the same 1500-byte IPv6 packets as a 1452-byte
// UDP payload does: 1500 − 40 (IPv6) − 20 (TCP) = 1440. Linux subtracts
// the 12-byte timestamp option from it, leaving 1428 bytes of payload.
const tcpMSS = 1440

func (t tlsTCP) Name() string  { return t.name }
func (tlsTCP) Reliable() bool  { return true }
func (tlsTCP) Network() string { return "tcp" }
func (tlsTCP) MaxMessage() int { return 0 }
func (t tlsTCP) Info() bench.Info {
	i := bench.Info{
		Label:         "crypto/tls 1.3 over kernel TCP",
		HandshakeRTTs: 2, // TCP SYN/SYN-ACK, then TLS 1.3's one round trip
		MaxDatagram:   tcpMSS - 12,
		Settings:      "TCP_MAXSEG 1440 (1428 B payload + timestamps: 1500-B IPv6 packets), TCP_NODELAY (Go default), kernel congestion control " + tcpCC(),
		Baseline:      t.mss != 0,
		Optional:      t.opt,
	}
	if t.mss == 0 {
		i.Label += " — loopback jumbo segments (not Internet-sized)"
		i.MaxDatagram = 65483
		i.Settings = "kernel default MSS on loopback (jumbo), TCP_NODELAY, congestion control " + tcpCC()
	}
	return i
}

func (t tlsTCP) control(network, address string, c syscall.RawConn) error {
	if t.mss == 0 {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = setMSS(fd, t.mss)
	})
	if err != nil {
		return err
	}
	return serr
}

func (t tlsTCP) Listen(addr string) (bench.Listener, error) {
	conf, err := bench.ServerTLS()
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: t.control}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return tlsListener{ln, conf}, nil
}

type tlsListener struct {
	net.Listener
	conf *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(c, l.conf), nil
}

func (t tlsTCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	conf, err := bench.ClientTLS()
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Control: t.control}, Config: conf}
	return d.DialContext(ctx, "tcp", addr)
}

// tcpCC names the kernel's TCP congestion control (BBR and CUBIC behave
// very differently on the lossy conditions).
func tcpCC() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return "(unknown)"
	}
	return strings.TrimSpace(string(b))
}
