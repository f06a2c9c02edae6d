//go:build race

package transport

// raceEnabled: the race detector is on. Under it sync.Pool drops a random quarter of what is
// put, so tests of pool reuse skip.
const raceEnabled = true
