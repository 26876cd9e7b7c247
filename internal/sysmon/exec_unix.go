//go:build unix

package sysmon

import (
	"fmt"
	"os"
	"syscall"
)

// Exec re-executes the running binary with Setting in GODEBUG, unless the
// process started with schedtrace in it; it returns only when it does not
// re-execute: nil when the setting was there, the error when the binary
// could not be found or executed (the process then runs on without it).
// Call it first thing, before the process opens listeners or files.
func Exec() error {
	env, changed := Env(os.Environ())
	if !changed {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("sysmon: %w", err)
	}
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("sysmon: exec %s: %w", exe, err)
	}
	return nil // not reached
}
