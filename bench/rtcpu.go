package bench

import "time"

// cpuMeter measures the process CPU spent over a run of request/response
// exchanges. Client and server run in this process, so it is both ends'
// cost (and the relay's on an impaired link): what a round trip costs the
// machine, which latency alone hides — a transport can buy a low p50 by
// spinning.
type cpuMeter struct{ t0 time.Duration }

func startCPU() cpuMeter { return cpuMeter{t0: processCPU()} }

// perExchange is the CPU µs per exchange since startCPU; 0 for none.
func (m cpuMeter) perExchange(n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(processCPU()-m.t0) / float64(time.Microsecond) / float64(n)
}

// cpuPerRTText is a report cell: CPU µs per request/response, both ends.
func cpuPerRTText(s *Summary) string {
	if s.CPUPerRT == 0 {
		return "—"
	}
	return fnum(s.CPUPerRT)
}
