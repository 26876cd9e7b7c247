//go:build !amd64

package embedded

func dot(a, b []float32) float32 { return dotGeneric(a, b) }

func dotsNibble(q []int8, codes []uint8, out []int32) { dotsNibbleGeneric(q, codes, out) }
