//go:build !linux || !cgo

package metrics

import "errors"

// openNVML: go-nvml needs cgo on Linux; without it there is no GPU reading.
func openNVML() (gpuBackend, error) {
	return nil, errors.New("nvml: unavailable in a build without cgo")
}
