package metrics

import (
	"sync"
	"time"
)

// The window keeps recent model results in a ring of windowSlots time slots,
// each with a count, an error count and a log-linear latency histogram, so
// its memory is fixed (about 60 × 0.7 KiB) whatever the load.
//
// Histogram: durations in nanoseconds, histSub sub-buckets per power of two
// between 2^histMinExp ns (65.5 µs) and 2^histMaxExp ns (275 s), one bucket
// below and one above. A quantile read from it is within 12.5 % of the truth
// inside that range.
const (
	windowSlots = 60
	histSubBits = 3
	histSub     = 1 << histSubBits
	histMinExp  = 16
	histMaxExp  = 38
	histBuckets = (histMaxExp-histMinExp)*histSub + 2
)

type slot struct {
	idx  int64 // slot number since the window's origin; stale when older than the window
	n    uint32
	errs uint32
	hist [histBuckets]uint32
}

type window struct {
	width time.Duration // of one slot
	span  time.Duration // width × len(slots), the configured Window rounded up

	mu    sync.Mutex
	slots []slot
}

func newWindow(w time.Duration) *window {
	width := w / windowSlots
	if width < time.Second {
		width = time.Second
	}
	n := int((w + width - 1) / width)
	if n < 1 {
		n = 1
	}
	slots := make([]slot, n)
	for i := range slots {
		slots[i].idx = -1
	}
	return &window{width: width, span: width * time.Duration(n), slots: slots}
}

// histScale is the window's histogram: nanoseconds.
var histScale = LogLinear{SubBits: histSubBits, MinExp: histMinExp, MaxExp: histMaxExp}

// histIndex returns the histogram bucket of a duration.
func histIndex(d time.Duration) int { return histScale.Index(uint64(max(d, 0))) }

// histBounds returns the lower and upper bound of bucket i in seconds.
func histBounds(i int) (lo, hi float64) {
	l, h := histScale.Bounds(i)
	return float64(l) / 1e9, float64(h) / 1e9
}

// add records one result at offset since the window's origin.
func (w *window) add(since, d time.Duration, failed bool) {
	idx := int64(max(since, 0) / w.width)
	b := histIndex(d)
	w.mu.Lock()
	s := &w.slots[idx%int64(len(w.slots))]
	if s.idx != idx {
		if s.idx > idx { // older than the window: the clock went back
			w.mu.Unlock()
			return
		}
		s.idx, s.n, s.errs = idx, 0, 0
		clear(s.hist[:])
	}
	s.n++
	if failed {
		s.errs++
	}
	s.hist[b]++
	w.mu.Unlock()
}

// windowStats is what the window says about the results of its span.
type windowStats struct {
	n, errs uint64
	p95     float64 // seconds, 0 when n is 0
}

// stats merges the slots still inside the window at offset since.
func (w *window) stats(since time.Duration) windowStats {
	cur := int64(max(since, 0) / w.width)
	oldest := cur - int64(len(w.slots)) + 1
	var st windowStats
	var hist [histBuckets]uint64
	w.mu.Lock()
	for i := range w.slots {
		s := &w.slots[i]
		if s.idx < oldest || s.idx > cur || s.n == 0 {
			continue
		}
		st.n += uint64(s.n)
		st.errs += uint64(s.errs)
		for j, c := range s.hist {
			hist[j] += uint64(c)
		}
	}
	w.mu.Unlock()
	st.p95 = quantile(&hist, st.n, 0.95)
	return st
}

// quantile interpolates linearly inside the bucket that holds rank q×n, as
// Prometheus' histogram_quantile does.
func quantile(hist *[histBuckets]uint64, n uint64, q float64) float64 {
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var cum uint64
	for i, c := range hist {
		if c == 0 {
			continue
		}
		if float64(cum+c) >= rank {
			lo, hi := histBounds(i)
			return lo + (hi-lo)*(rank-float64(cum))/float64(c)
		}
		cum += c
	}
	_, hi := histBounds(histBuckets - 1)
	return hi
}
