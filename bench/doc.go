// Package bench measures tlsgram against the transports its users would
// otherwise pick — pion/dtls v2 (DTLS 1.2), Go's crypto/tls 1.3 over TCP,
// quic-go, kcp-go and raw UDP — side by side, in the same run, on a clean
// loopback and on links impaired by the user-space relay of
// internal/impair (the same model `tlsgram relay` uses).
//
// It sits at the top of the layering: it imports the public transport
// package and any third-party library, and nothing in tlsgram imports it.
//
// Every contender is one small adapter ([Contender]) in bench/contenders,
// one file each. A contender is either a reliable byte stream (tlsgram,
// TLS over TCP, quic-go, kcp-go) or an unreliable message transport
// (pion/dtls, raw UDP); the measurements treat the two honestly and
// differently: a message transport is credited only with the distinct
// messages that actually arrived, and its delivered fraction is reported
// next to its goodput; a lost request is counted as lost, never as a
// latency sample.
//
// Both ends of every measurement run in this process on 127.0.0.1, so CPU
// time and allocations cover client and server together (and the relay on
// impaired links). Every measurement runs under a context deadline and a
// hard watchdog: a contender that fails or stalls yields an "error" or
// "timeout" cell, never a hang.
//
// The runner in bench/cmd/report repeats each measurement, takes medians,
// computes ratios against the baselines pair by pair within a repetition,
// and writes a Markdown report, JSON and SVG charts.
package bench
