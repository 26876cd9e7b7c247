package embedded

import "golang.org/x/sys/cpu"

var (
	useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	useVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI
)

// dotAVX2 is in dot_amd64.s: 4×8-lane FMA accumulators, scalar tail.
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32

// dotsNibbleAVX2 is in dot_amd64.s: nibbles unpacked with a shift and two
// masks, multiplied by the query bytes with VPMADDUBSW, widened with
// VPMADDWD.
//
//go:noescape
func dotsNibbleAVX2(q *int8, codes *uint8, stride, n int, out *int32)

// dotsNibbleVNNI is in dot_amd64.s: the same with AVX-512 VPDPBUSD, 128
// dimensions a step.
//
//go:noescape
func dotsNibbleVNNI(q *int8, codes *uint8, stride, n int, out *int32)

// dot returns the inner product of a and b[:len(a)].
func dot(a, b []float32) float32 {
	if useAVX2 && len(a) > 0 {
		_ = b[len(a)-1]
		return dotAVX2(&a[0], &b[0], len(a))
	}
	return dotGeneric(a, b)
}

// dotsNibble sets out[r] to Σ q[i]·u[i] over row r's 4-bit codes u (rows
// of len(q)/2 bytes; see dotsNibbleGeneric for the layout).
func dotsNibble(q []int8, codes []uint8, out []int32) {
	stride := len(q)
	if len(out) == 0 || stride == 0 {
		return
	}
	_ = codes[len(out)*stride/2-1]
	switch {
	case useVNNI:
		dotsNibbleVNNI(&q[0], &codes[0], stride, len(out), &out[0])
	case useAVX2:
		dotsNibbleAVX2(&q[0], &codes[0], stride, len(out), &out[0])
	default:
		dotsNibbleGeneric(q, codes, out)
	}
}
