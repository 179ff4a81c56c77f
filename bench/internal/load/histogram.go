package load

import (
	"math/bits"
	"sync/atomic"
)

// histogram counts latencies in microseconds in log-linear buckets: exact
// below 64µs, then 32 buckets per power of two (about 3% resolution).
// record is safe for concurrent use.
type histogram struct {
	counts [64 + 58*32]atomic.Int64
	max    atomic.Int64
	total  atomic.Int64
}

func bucketOf(us uint64) int {
	if us < 64 {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us>>e is in [32, 63]
	return 64 + (e-1)*32 + int(us>>e) - 32
}

// bucketMid returns a value in the middle of bucket i.
func bucketMid(i int) float64 {
	if i < 64 {
		return float64(i)
	}
	e := (i-64)/32 + 1
	m := uint64((i-64)%32 + 32)
	lo := m << e
	return float64(lo) + float64(uint64(1)<<e)/2
}

func (h *histogram) record(us int64) {
	if us < 0 {
		us = 0
	}
	h.counts[bucketOf(uint64(us))].Add(1)
	h.total.Add(1)
	for {
		cur := h.max.Load()
		if us <= cur || h.max.CompareAndSwap(cur, us) {
			return
		}
	}
}

// quantile returns the latency in microseconds below which a fraction q of
// the samples fall, or 0 without samples.
func (h *histogram) quantile(q float64) float64 {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(bucketMid(i), float64(h.max.Load()))
		}
	}
	return float64(h.max.Load())
}
