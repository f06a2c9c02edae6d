package transport

// isClosedChan reports whether c is closed, without blocking.
func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
