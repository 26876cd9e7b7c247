// Package sysmon keeps the Go runtime's system monitor out of its deep
// sleep in the long-running servers (aurax serve, the RunPod worker).
//
// sysmon, the runtime's background thread, goes to a deep sleep whenever
// every P is idle, and the next system call wakes it (a futex wake in that
// call) and resets it to polling every 20 µs for at least a millisecond
// before it backs off again. A proxy under load goes idle and busy again
// a thousand times a second, so sysmon's wake-ups and 20 µs sleeps were
// 14 % of AURAX's CPU at 1,000 requests/s (perf, on 2 cores), and their
// context switches more (golang/go#18236: its tick is fixed). The runtime
// never enters that deep sleep while GODEBUG's schedtrace is set: with
// the largest period (2³¹−1 ms, 24.8 days) sysmon backs off to one
// wake-up every 10 ms when it finds nothing to do, and AURAX's CPU a
// request falls by 10–28 % (the hop suite, side by side). The setting
// also prints one scheduler summary line to stderr each 24.8 days of the
// machine's uptime, and a scheduler dump before the stacks of a fatal
// error.
//
// The runtime reads that setting only at start, so Exec re-executes the
// binary (the same process, arguments and environment) with it added to
// GODEBUG. A GODEBUG that already names schedtrace is the operator's
// choice and left as it is: GODEBUG=schedtrace=0 keeps Go's default.
package sysmon

import "strings"

// Setting is the GODEBUG setting Exec adds.
const Setting = "schedtrace=2147483647"

// Env returns environ with Setting added to its GODEBUG (the first, the
// one the runtime reads), and whether it added it: not when GODEBUG
// already names schedtrace.
func Env(environ []string) ([]string, bool) {
	for i, kv := range environ {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			continue
		}
		for f := range strings.SplitSeq(v, ",") {
			if k, _, _ := strings.Cut(f, "="); strings.TrimSpace(k) == "schedtrace" {
				return environ, false
			}
		}
		out := append([]string(nil), environ...)
		if v = strings.Trim(v, ","); v == "" {
			out[i] = "GODEBUG=" + Setting
		} else {
			out[i] = "GODEBUG=" + v + "," + Setting
		}
		return out, true
	}
	return append(append([]string(nil), environ...), "GODEBUG="+Setting), true
}
