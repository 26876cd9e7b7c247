//go:build !amd64

package embedded

func dot(a, b []float32) float32 { return dotGeneric(a, b) }

func dotsInt8(q []int16, codes []int8, out []int32) { dotsInt8Generic(q, codes, out) }
