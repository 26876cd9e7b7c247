//go:build !linux

package embedded

func evict(string) bool { return false }
