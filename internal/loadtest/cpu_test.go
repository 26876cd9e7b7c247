package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestProcAccounting checks the hop table's CPU, kernel and context-switch
// columns against what a process says of itself. The test binary, as a
// child of a shell (as nginx's worker is nginx's master's), spends user
// time, then system time, then sleeps 200 times; it prints its own
// getrusage figures and waits. procUsage of the shell, which itself does
// nothing, must find the child's figures.
func TestProcAccounting(t *testing.T) {
	if os.Getenv("LOADTEST_ACCOUNTING_CHILD") == "1" {
		accountingChild()
		return
	}
	sh := exec.Command("sh", "-c", `"$0" -test.run '^TestProcAccounting$'; true`, os.Args[0])
	sh.Env = append(os.Environ(), "LOADTEST_ACCOUNTING_CHILD=1")
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); sh.Wait() }() // the child exits when its stdin closes
	var user, sys time.Duration
	var switches int
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v (%q)", err, line)
	}
	if _, err := fmt.Sscanf(line, "%d %d %d", &user, &sys, &switches); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	if user < 200*time.Millisecond || sys < 100*time.Millisecond || switches < 200 {
		t.Fatalf("child said user %v, system %v, %d switches: it did not do its work", user, sys, switches)
	}
	pid := sh.Process.Pid
	// /proc counts in clock ticks (10 ms) and the child's figures were
	// read a moment before; its exit is not waited for, so nothing of it
	// has moved to the shell's own counters.
	slack := 3 * clockTick
	u := procUsage(pid)
	if got := u.cpu; got < user+sys-slack || got > user+sys+slack {
		t.Errorf("CPU %v, the child said %v", got, user+sys)
	}
	if got := u.sys; got < sys-slack || got > sys+slack {
		t.Errorf("system %v, the child said %v", got, sys)
	}
	if got := u.switches; got < switches {
		t.Errorf("%d context switches, the child said %d", got, switches)
	}
}

var sink int // the child's user-time loop, kept

// accountingChild spends at least 200 ms of user time, 100 ms of system
// time and 200 sleeps (voluntary context switches), by its own rusage,
// then prints "user sys switches" and waits for its stdin to close.
func accountingChild() {
	runtime.LockOSThread() // the sleeps on one thread, as the spins
	var ru syscall.Rusage
	rusage := func() (user, sys time.Duration, switches int) {
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), int(ru.Nvcsw + ru.Nivcsw)
	}
	for u, _, _ := rusage(); u < 200*time.Millisecond; u, _, _ = rusage() {
		for i := range 1_000_000 {
			sink += i
		}
	}
	for _, s, _ := rusage(); s < 100*time.Millisecond; _, s, _ = rusage() {
		for range 1000 {
			syscall.Getppid()
		}
	}
	for range 200 {
		time.Sleep(time.Millisecond)
	}
	u, s, n := rusage()
	fmt.Printf("%d %d %d\n", u, s, n)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}
