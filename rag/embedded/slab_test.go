package embedded

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSlab(t *testing.T) {
	s := slab[uint8]{width: 3, per: blockRows}
	put := func(i int) { copy(s.push(), []uint8{uint8(i), uint8(i >> 8), 7}) }
	check := func(n int) {
		t.Helper()
		require.Equal(t, n, s.n)
		for i := range n {
			require.Equal(t, []uint8{uint8(i), uint8(i >> 8), 7}, s.row(i), "row(%d)", i)
		}
		for i := 0; i < n; i += blockRows { // rows in one chunk are one slice
			e := min(s.chunkEnd(i), n)
			require.Len(t, s.rows(i, e), 3*(e-i))
			require.Equal(t, s.row(e-1), s.rows(i, e)[3*(e-i-1):], "rows(%d, %d)", i, e)
		}
	}
	for i := range 1000 {
		put(i)
	}
	check(1000)
	require.Len(t, s.chunks, 4)
	require.Equal(t, 2*blockRows, s.chunkEnd(blockRows))

	for s.n > 300 {
		s.pop()
	}
	check(300)
	require.Len(t, s.chunks, 3, "two chunks in use and one spare")
	for i := 300; i < 600; i++ {
		put(i)
	}
	check(600)
	for s.n > 0 {
		s.pop()
	}
	require.Len(t, s.chunks, 1, "an empty slab keeps one spare chunk")
	put(0)
	check(1)

	// The first chunk starts small and grows like a slice up to per rows.
	f := newSlab[float32](384, 4)
	f.push()
	require.Equal(t, firstChunkRows*384, cap(f.chunks[0]))
	require.Equal(t, 10752, f.per, "16 MiB of 384-d float32 rows, a multiple of blockRows")
}
