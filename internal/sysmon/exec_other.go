//go:build !unix

package sysmon

// Exec does nothing where the process cannot re-execute itself in place.
func Exec() error { return nil }
