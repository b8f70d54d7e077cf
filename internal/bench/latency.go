package bench

import (
	"math"
	"slices"
	"time"
)

// Latencies keeps every sample and answers percentiles exactly (nearest
// rank over the sorted samples): at a few million samples that is cheaper
// and more honest than a bucketed histogram. It is not safe for concurrent
// use; give each goroutine its own and Merge them.
type Latencies struct {
	d      []time.Duration
	sorted bool
}

// Add records one sample.
func (l *Latencies) Add(d time.Duration) {
	l.d = append(l.d, d)
	l.sorted = false
}

// Merge adds every sample of o.
func (l *Latencies) Merge(o *Latencies) {
	l.d = append(l.d, o.d...)
	l.sorted = false
}

// Len is the number of samples.
func (l *Latencies) Len() int { return len(l.d) }

func (l *Latencies) sort() {
	if !l.sorted {
		slices.Sort(l.d)
		l.sorted = true
	}
}

// Quantile returns the sample at quantile q (0 ≤ q ≤ 1) by nearest rank:
// the smallest sample with at least q of all samples at or below it. It is
// 0 without samples.
func (l *Latencies) Quantile(q float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	l.sort()
	// ceil(q·n), less an epsilon so that 0.99·100 is rank 99 and not 100.
	rank := int(math.Ceil(q*float64(len(l.d)) - 1e-9))
	rank = min(max(rank, 1), len(l.d))
	return l.d[rank-1]
}

// Max is the largest sample, 0 without samples.
func (l *Latencies) Max() time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	l.sort()
	return l.d[len(l.d)-1]
}

// Mean is the average sample, 0 without samples.
func (l *Latencies) Mean() time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range l.d {
		sum += d
	}
	return sum / time.Duration(len(l.d))
}

// Millis converts a duration to fractional milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Rate is a count over an elapsed time.
type Rate struct {
	N       int
	Elapsed time.Duration
}

// PerSec is N per second, 0 when nothing elapsed.
func (r Rate) PerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.N) / r.Elapsed.Seconds()
}
