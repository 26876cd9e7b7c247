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
// codes), so the kernels need no tail loop: two 64-dimension groups.
const codeAlign = 128

// dotsNibbleGeneric is the portable dotsNibble. A row is len(q)/2 bytes in
// groups of 32 bytes for 64 dimensions: byte j of group g holds dimension
// 64g+j in its low nibble and 64g+32+j in its high one.
func dotsNibbleGeneric(q []int8, codes []uint8, out []int32) {
	stride := len(q)
	for r := range out {
		row := codes[r*stride/2 : (r+1)*stride/2 : (r+1)*stride/2]
		var s0, s1 int32
		for g := 0; g < stride; g += 64 {
			grp := row[g/2 : g/2+32 : g/2+32]
			qq := q[g : g+64 : g+64]
			for j, b := range grp {
				s0 += int32(b&15) * int32(qq[j])
				s1 += int32(b>>4) * int32(qq[32+j])
			}
		}
		out[r] = s0 + s1
	}
}
