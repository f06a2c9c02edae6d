package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the q-quantile (0 ≤ q ≤ 1) of sorted by the
// nearest-rank method: the smallest sample such that at least q of all
// samples are ≤ it. Nearest rank never invents a value between two samples,
// so p99.9 of fewer than 1000 samples is the maximum — the report marks
// such cells. It returns 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// Median returns the median of xs (the mean of the two middle values for
// an even count), ignoring NaNs; NaN if there is none.
func Median(xs []float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Latency summarises request/response or handshake samples.
type Latency struct {
	N    int     `json:"n"`    // successful samples
	Lost int     `json:"lost"` // requests that got no answer in time
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	// CPUPerRT is process CPU (user + system, both ends, and the relay on
	// impaired links) per request/response exchange in µs; set by
	// MeasureLatency only (see cpuPerExchange).
	CPUPerRT float64 `json:"cpu_us_per_rt,omitempty"`
}

// Summarize sorts samples in place and returns their percentiles in
// milliseconds.
func Summarize(samples []time.Duration, lost int) Latency {
	slices.Sort(samples)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	l := Latency{N: len(samples), Lost: lost}
	if len(samples) > 0 {
		l.P50 = ms(Percentile(samples, 0.50))
		l.P99 = ms(Percentile(samples, 0.99))
		l.P999 = ms(Percentile(samples, 0.999))
		l.Max = ms(samples[len(samples)-1])
	}
	return l
}

// LostFraction is lost / (n + lost), 0 with no requests.
func (l Latency) LostFraction() float64 {
	if l.N+l.Lost == 0 {
		return 0
	}
	return float64(l.Lost) / float64(l.N+l.Lost)
}
