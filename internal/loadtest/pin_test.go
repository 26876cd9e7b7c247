package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// allowed is the Cpus_allowed_list of a thread's status file.
func allowed(t *testing.T, status string) string {
	t.Helper()
	b, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s: no Cpus_allowed_list", status)
	return ""
}

func cpus(t *testing.T) []int {
	c, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPin runs pin(1) in a child (it moves the whole process) and checks
// that every thread of the child, and a proxy it starts, is where the
// report line says.
func TestPin(t *testing.T) {
	if os.Getenv("LOADTEST_PIN_CHILD") == "1" {
		all := cpus(t)
		line, err := pin(1)
		if err != nil {
			t.Fatal(err)
		}
		own, proxy := cpuList(all[:len(all)-1]), cpuList(all[len(all)-1:])
		if proxyCPUs != proxy || !strings.Contains(line, "CPU "+proxy+",") || !strings.HasSuffix(line, "CPU "+own) {
			t.Fatalf("pin: %q, proxyCPUs %q; want the proxies on %s, the rest on %s", line, proxyCPUs, proxy, own)
		}
		tasks, _ := filepath.Glob("/proc/self/task/*/status")
		for _, st := range tasks {
			if got := allowed(t, st); got != own {
				t.Errorf("%s: on CPUs %s, want %s", st, got, own)
			}
		}
		out, err := proxyCommand("grep", "Cpus_allowed_list", "/proc/self/status").Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(strings.TrimPrefix(string(out), "Cpus_allowed_list:")); got != proxy {
			t.Errorf("a proxy on CPUs %s, want %s", got, proxy)
		}
		return
	}
	if len(cpus(t)) < 2 {
		t.Skip("one CPU: nothing to split")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestPin$", "-test.v")
	cmd.Env = append(os.Environ(), "LOADTEST_PIN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestPin") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestPinRefuses: no CPU left for the load, or none asked for.
func TestPinRefuses(t *testing.T) {
	for _, n := range []int{0, len(cpus(t)), len(cpus(t)) + 3} {
		if _, err := pin(n); err == nil {
			t.Errorf("pin(%d) on %d CPUs: no error", n, len(cpus(t)))
		}
	}
	if proxyCPUs != "" {
		t.Fatalf("a refused pin set proxyCPUs to %q", proxyCPUs)
	}
	if cmd := proxyCommand("true"); filepath.Base(cmd.Path) != "true" {
		t.Errorf("unpinned, proxyCommand runs %s", cmd.Path)
	}
}
