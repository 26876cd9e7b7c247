package embedded

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

type nibbleKernel struct {
	name string
	fn   func(q []int8, codes []uint8, out []int32)
}

// nibbleKernels are the assembly kernels this CPU can run.
func nibbleKernels() []nibbleKernel {
	var ks []nibbleKernel
	if useAVX2 {
		ks = append(ks, nibbleKernel{"dotsNibbleAVX2", func(q []int8, codes []uint8, out []int32) {
			dotsNibbleAVX2(&q[0], &codes[0], len(q), len(out), &out[0])
		}})
	}
	if useVNNI {
		ks = append(ks, nibbleKernel{"dotsNibbleVNNI", func(q []int8, codes []uint8, out []int32) {
			dotsNibbleVNNI(&q[0], &codes[0], len(q), len(out), &out[0])
		}})
	}
	return ks
}

// BenchmarkNibbleKernels scores n 384-d rows of 4-bit codes on one and
// on two goroutines with each kernel this CPU can run; MB/s is code bytes.
func BenchmarkNibbleKernels(b *testing.B) {
	const dim = 384
	for _, n := range []int{100_000, 1_000_000} {
		r := rand.New(rand.NewPCG(1, 1))
		codes := make([]uint8, n*dim/2)
		for i := range codes {
			codes[i] = uint8(r.IntN(256))
		}
		q := make([]int8, dim)
		for i := range q {
			q[i] = int8(r.IntN(256) - 128)
		}
		for _, k := range nibbleKernels() {
			for _, w := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/n=%d/workers=%d", k.name, n, w), func(b *testing.B) {
					b.SetBytes(int64(len(codes)))
					for b.Loop() {
						parallel(n, w, func(_, lo, hi int) {
							var out [blockRows]int32
							for i := lo; i < hi; i += blockRows {
								m := min(blockRows, hi-i)
								k.fn(q, codes[i*dim/2:(i+m)*dim/2], out[:m])
							}
						})
					}
				})
			}
		}
	}
}
