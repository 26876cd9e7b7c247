package embedded

import "math"

// dotGeneric is the portable inner product, unrolled by 8 with independent
// accumulators so the CPU can overlap the multiplies.
func dotGeneric(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}

// normalize scales v to unit length in place; a zero vector stays zero.
func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}

func sqNorm(v []float32) float32 { return dotGeneric(v, v) }

// codeAlign is the multiple every quantized row is padded to (with zero
// codes), so the kernels need no tail loop: one 128-dimension block.
const codeAlign = 128

// nibbleAt is where dimension d's 4-bit code lives in a row: byte d/128·64
// + d%64, the low nibble when d%128 < 64. The kernels read a 64-byte block
// as 128 codes in query order with one shift and two masks.
func nibbleAt(d int) (byteIndex int, high bool) { return d/128*64 + d%64, d%128 >= 64 }

// dotsNibbleGeneric is the portable dotsNibble: out[r] = Σ q[i]·u[i] over
// row r's len(q)/2 bytes of unsigned 4-bit codes u (layout: nibbleAt).
func dotsNibbleGeneric(q []int8, codes []uint8, out []int32) {
	stride := len(q)
	for r := range out {
		row := codes[r*stride/2 : (r+1)*stride/2 : (r+1)*stride/2]
		var s0, s1 int32
		for b := 0; b < stride; b += 128 {
			blk := row[b/2 : b/2+64 : b/2+64]
			qq := q[b : b+128 : b+128]
			for j, x := range blk {
				s0 += int32(x&15) * int32(qq[j])
				s1 += int32(x>>4) * int32(qq[64+j])
			}
		}
		out[r] = s0 + s1
	}
}
