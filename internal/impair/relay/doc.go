// Package relay applies the impairment model of package impair to real sockets on loopback: a
// [Relay] forwards UDP datagrams between clients and one target through a pair of impair.Link
// values per client (one each way), with a scheduler goroutine that delivers each copy at its
// time; a [TCPRelay] applies the subset of the model that makes sense for a byte stream (delay,
// jitter, a rate limit; see impair.TCPApplicable) to TCP connections.
//
// The `tlsgram relay` subcommand, the demo and the benchmark suite use it; tests of package
// transport use it for impaired runs over real sockets. The model itself stays in package impair
// so that the sans-IO simulator (session/simnet) can import it without importing socket code.
package relay
