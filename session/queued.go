package session

// SendQueued reports whether the core has something of its own to send as soon as the congestion
// window and the pacer allow: stream data not yet sent, retransmissions, or a control frame. It
// does not count a pending ACK (see AckDue, NextTimeout). The transport asks it before a Write to
// learn whether the Write is the only thing to send, which it may then send inline.
func (c *Conn) SendQueued() bool { return c.wantsToSend() }

// StreamQueued reports whether stream data (new, retransmitted, or the FIN) waits to be sent:
// SendQueued without the control frames, which a Write's datagram carries along.
func (c *Conn) StreamQueued() bool { return !c.tx.retransmit.empty() || c.tx.hasNewData() }
