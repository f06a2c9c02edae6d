//go:build !linux

package transport

// Readers park only on Linux (park_linux.go); elsewhere a dialled connection's reader waits on
// its socket for as long as the connection lives.

func (ep *endpoint) canPark() bool    { return false }
func (ep *endpoint) parkLocked() bool { return false }
func (ep *endpoint) forgetLocked()    {}
