package sysmon

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		changed bool
	}{
		{"none", []string{"A=1"}, []string{"A=1", "GODEBUG=" + Setting}, true},
		{"empty", []string{"GODEBUG="}, []string{"GODEBUG=" + Setting}, true},
		{"others", []string{"GODEBUG=http2client=0,", "B=2"}, []string{"GODEBUG=http2client=0," + Setting, "B=2"}, true},
		{"the operator's", []string{"GODEBUG=gctrace=1,schedtrace=0"}, []string{"GODEBUG=gctrace=1,schedtrace=0"}, false},
		{"the first counts", []string{"GODEBUG=gctrace=1", "GODEBUG=schedtrace=0"}, []string{"GODEBUG=gctrace=1," + Setting, "GODEBUG=schedtrace=0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]string(nil), tc.in...)
			got, changed := Env(in)
			if changed != tc.changed || strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("Env(%q) = %q, %v; want %q, %v", tc.in, got, changed, tc.want, tc.changed)
			}
			if strings.Join(in, "\n") != strings.Join(tc.in, "\n") {
				t.Fatalf("Env changed its argument: %q", in)
			}
		})
	}
}

// TestExec runs this test binary as a child that calls Exec: it starts
// twice in the same process (the same pid) and runs the second time with
// the setting; with schedtrace already in GODEBUG it starts once, as it was.
func TestExec(t *testing.T) {
	if os.Getenv("SYSMON_CHILD") != "" {
		fmt.Printf("start pid=%d\n", os.Getpid())
		if err := Exec(); err != nil {
			fmt.Println("error", err)
		}
		fmt.Printf("GODEBUG=%s\n", os.Getenv("GODEBUG"))
		os.Exit(0)
	}
	for _, tc := range []struct {
		godebug string
		starts  int
		want    string
	}{
		{"", 2, "GODEBUG=" + Setting},
		{"GODEBUG=gctrace=0", 2, "GODEBUG=gctrace=0," + Setting},
		{"GODEBUG=schedtrace=0", 1, "GODEBUG=schedtrace=0"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExec$")
		cmd.Env = append(os.Environ(), "SYSMON_CHILD=1")
		if tc.godebug != "" {
			cmd.Env = append(cmd.Env, tc.godebug)
		}
		cmd.Env = withoutInherited(cmd.Env, tc.godebug)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.godebug, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		pid := "start pid=" + strconv.Itoa(cmd.Process.Pid)
		starts := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "start ") {
				if l != pid {
					t.Fatalf("%s: %q, want the child's own pid (%s): Exec must replace the process, not start another", tc.godebug, l, pid)
				}
				starts++
			}
		}
		if starts != tc.starts || lines[len(lines)-1] != tc.want {
			t.Fatalf("%s: %d starts, last %q; want %d, %q\n%s", tc.godebug, starts, lines[len(lines)-1], tc.starts, tc.want, out)
		}
	}
}

// withoutInherited drops the GODEBUG the test itself runs under, keeping
// the case's own (set, the last entry) or none.
func withoutInherited(env []string, own string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "GODEBUG=") && kv != own {
			continue
		}
		out = append(out, kv)
	}
	return out
}
