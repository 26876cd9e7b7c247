package metrics

import "math/bits"

// LogLinear is a log-linear bucketing of unsigned values (durations in some
// unit): 2^SubBits buckets per power of two between 2^MinExp and 2^MaxExp,
// one bucket below and one above, Buckets() in all. A value read back as its
// bucket's bounds is within 2^-SubBits of the truth inside that range. The
// controller's window and the status page's charts each pick their own.
type LogLinear struct {
	SubBits, MinExp, MaxExp int
}

// Buckets is the number of buckets.
func (l LogLinear) Buckets() int { return (l.MaxExp-l.MinExp)<<l.SubBits + 2 }

// Index returns the bucket of v.
func (l LogLinear) Index(v uint64) int {
	if v < 1<<l.MinExp {
		return 0
	}
	e := bits.Len64(v) - 1
	if e >= l.MaxExp {
		return l.Buckets() - 1
	}
	sub := int(v>>(e-l.SubBits)) & (1<<l.SubBits - 1)
	return 1 + (e-l.MinExp)<<l.SubBits + sub
}

// Bounds returns bucket i's lower and upper bound (equal for the last,
// open-ended bucket).
func (l LogLinear) Bounds(i int) (lo, hi uint64) {
	switch {
	case i <= 0:
		return 0, 1 << l.MinExp
	case i >= l.Buckets()-1:
		return 1 << l.MaxExp, 1 << l.MaxExp
	}
	i--
	sub := uint64(1)<<l.SubBits + uint64(i&(1<<l.SubBits-1))
	step := uint64(1) << (l.MinExp + i>>l.SubBits - l.SubBits)
	return sub * step, (sub + 1) * step
}
