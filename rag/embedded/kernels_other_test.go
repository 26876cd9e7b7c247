//go:build !amd64

package embedded

type nibbleKernel struct {
	name string
	fn   func(q []int8, codes []uint8, out []int32)
}

func nibbleKernels() []nibbleKernel { return nil }
