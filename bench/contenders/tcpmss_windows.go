package contenders

import "errors"

// setMSS fails: Windows sockets have no settable TCP_MAXSEG, so the Internet-sized TLS-over-TCP
// baseline cannot run there (the loopback-jumbo one, which sets nothing, can).
func setMSS(fd uintptr, mss int) error {
	return errors.New("contenders: TCP_MAXSEG cannot be set on Windows")
}
