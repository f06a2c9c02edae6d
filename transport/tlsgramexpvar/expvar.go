// Package tlsgramexpvar publishes tlsgram's process-wide counters (transport.ReadMetrics)
// through package expvar, so they appear in /debug/vars next to the runtime's memstats. It is
// a package of its own because expvar imports net/http, which package transport does not.
package tlsgramexpvar

import (
	"errors"
	"expvar"

	"github.com/tlsgram/tlsgram/transport"
)

// Publish publishes transport.ReadMetrics under name (for example "tlsgram"): every read of
// the variable takes a fresh snapshot, shown as a JSON object with transport.Metrics' field
// names. It fails if name is taken.
func Publish(name string) error {
	if expvar.Get(name) != nil {
		return errors.New("tlsgramexpvar: " + name + " is already published")
	}
	expvar.Publish(name, expvar.Func(func() any { return transport.ReadMetrics() }))
	return nil
}
