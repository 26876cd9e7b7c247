package ui

import (
	"math"
	"time"

	"github.com/aurax/aurax/metrics"
)

// hist is a log-linear histogram of durations for the charts: hSub buckets
// per power of two of microseconds between 2^hMinExp µs (128 µs) and
// 2^hMaxExp µs (18 min), one below and one above: 94 counters, 376 bytes. A
// quantile read from it is within about 12 % of the truth inside that
// range, enough for a chart. (metrics/window.go keeps a finer one for the
// controller's p95; the two are tuned separately on purpose.)
const (
	hSubBits = 2
	hSub     = 1 << hSubBits
	hMinExp  = 7
	hMaxExp  = 30
	hBuckets = (hMaxExp-hMinExp)*hSub + 2
)

type hist struct {
	n uint32
	b [hBuckets]uint32
}

// histScale is the charts' histogram: microseconds.
var histScale = metrics.LogLinear{SubBits: hSubBits, MinExp: hMinExp, MaxExp: hMaxExp}

func histBucket(d time.Duration) int { return histScale.Index(uint64(max(d.Microseconds(), 0))) }

// histBounds returns bucket i's bounds in milliseconds.
func histBounds(i int) (lo, hi float64) {
	l, h := histScale.Bounds(i)
	return float64(l) / 1e3, float64(h) / 1e3
}

func (h *hist) add(d time.Duration) {
	h.n++
	h.b[histBucket(d)]++
}

func (h *hist) merge(o *hist) {
	h.n += o.n
	for i, c := range o.b {
		h.b[i] += c
	}
}

// quantile interpolates inside the bucket holding rank q×n, in
// milliseconds rounded to 0.1; 0 when empty.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := q * float64(h.n)
	var cum uint32
	for i, c := range h.b {
		if c == 0 {
			continue
		}
		if float64(cum+c) >= rank {
			lo, hi := histBounds(i)
			return round1(lo + (hi-lo)*(rank-float64(cum))/float64(c))
		}
		cum += c
	}
	_, hi := histBounds(hBuckets - 1)
	return hi
}

// round1 rounds to one decimal: the JSON carries no false precision.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// round3 rounds to three decimals (rates and shares).
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
