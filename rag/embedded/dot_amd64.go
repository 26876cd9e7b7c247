package embedded

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dotAVX2 is in dot_amd64.s: 4×8-lane FMA accumulators, scalar tail.
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32

// dotsInt8AVX2 is in dot_amd64.s: int8 codes widened to int16 and
// multiplied pairwise (VPMOVSXBW, VPMADDWD), two 8-lane int32 accumulators.
//
//go:noescape
func dotsInt8AVX2(q *int16, codes *int8, stride, n int, out *int32)

// dot returns the inner product of a and b[:len(a)].
func dot(a, b []float32) float32 {
	if useAVX2 && len(a) > 0 {
		_ = b[len(a)-1]
		return dotAVX2(&a[0], &b[0], len(a))
	}
	return dotGeneric(a, b)
}

// dotsInt8 sets out[r] to the inner product of q and row r of codes (rows
// of len(q) codes; len(q) a multiple of codeAlign). See dotsInt8Generic.
func dotsInt8(q []int16, codes []int8, out []int32) {
	stride := len(q)
	if useAVX2 && len(out) > 0 && stride > 0 {
		_ = codes[len(out)*stride-1]
		dotsInt8AVX2(&q[0], &codes[0], stride, len(out), &out[0])
		return
	}
	dotsInt8Generic(q, codes, out)
}
