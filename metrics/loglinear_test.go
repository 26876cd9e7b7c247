package metrics

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLogLinear: every value lies in its bucket's bounds, buckets are in
// order and each is within 2^-SubBits of its lower bound, for the window's
// scale and a coarser one like the status page's.
func TestLogLinear(t *testing.T) {
	require.Equal(t, histBuckets, histScale.Buckets(), "the window's arrays are sized by its constants")
	for _, l := range []LogLinear{histScale, {SubBits: 2, MinExp: 7, MaxExp: 30}} {
		require.Equal(t, 0, l.Index(0))
		require.Equal(t, l.Buckets()-1, l.Index(1<<62))
		prev := 0
		for v := uint64(1); v < 1<<(l.MaxExp+1); v = v*17/16 + 1 {
			i := l.Index(v)
			require.GreaterOrEqual(t, i, prev, "Index(%d) not monotonic", v)
			prev = i
			lo, hi := l.Bounds(i)
			if i == l.Buckets()-1 {
				require.GreaterOrEqual(t, v, lo)
				continue
			}
			require.Truef(t, lo <= v && v < hi, "Index(%d) = %d with bounds [%d, %d)", v, i, lo, hi)
			if i > 0 {
				require.LessOrEqual(t, float64(hi-lo)/float64(lo), 1/float64(uint64(1)<<l.SubBits)+1e-12)
			}
		}
	}
}
