package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The hop suite runs AURAX in a process of its own, as nginx is: the load
// generator's and the upstream's garbage and goroutines are not AURAX's,
// and a profile of that process is AURAX alone.

// childProcs, when above 0, is the GOMAXPROCS of the AURAX processes
// (-aurax-procs), the load generator's and the upstream's staying as they
// are.
var childProcs int

// childGodebug, when set, is the GODEBUG of the AURAX processes.
var childGodebug string

// auraxProc is AURAX serving in a child process (this binary, -serve).
type auraxProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
}

// startAURAXProc starts the child in front of upstreams (comma-separated);
// profileDir, when set, gets its CPU, allocation, block, mutex and
// goroutine profiles, its gctrace and its goroutine count every second.
// exe is the loadtest binary to run ("": this one; another build of it
// puts two versions of AURAX side by side).
func startAURAXProc(exe, upstreams string, slots int, profileDir string) (*auraxProc, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	cmd := proxyCommand(exe, "-serve", upstreams, "-serve-slots", strconv.Itoa(slots), "-profile", profileDir)
	cmd.Stderr = os.Stderr
	cmd.Env = os.Environ()
	if childProcs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(childProcs))
	}
	godebug := childGodebug
	if profileDir != "" {
		f, err := os.Create(filepath.Join(profileDir, "gctrace.txt"))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stderr = f
		godebug = strings.Trim("gctrace=1,"+godebug, ",")
	}
	if godebug != "" {
		cmd.Env = append(cmd.Env, "GODEBUG="+godebug)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &auraxProc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(line, "http://") {
		p.stop()
		return nil, fmt.Errorf("aurax child: no address (%q, %v)", line, err)
	}
	p.url = strings.TrimSpace(line)
	go io.Copy(io.Discard, stdout)
	return p, nil
}

// stop closes the child's stdin, its signal to write its profiles and
// exit, and waits for it (killing it after 30 s).
func (p *auraxProc) stop() {
	p.stdin.Close()
	waitOrKill(p.cmd, 30*time.Second)
}

// waitOrKill waits for cmd to exit, killing it after limit.
func waitOrKill(cmd *exec.Cmd, limit time.Duration) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
	}
}

// overhead reads the child's aurax_overhead_seconds histogram from its
// /metrics (the text format: one bucket a line).
func (p *auraxProc) overhead() hist {
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return hist{}
	}
	defer resp.Body.Close()
	var h hist
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	const prefix = `aurax_overhead_seconds_bucket{le="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		b, err1 := strconv.ParseFloat(le, 64)
		c, err2 := strconv.ParseFloat(count, 64)
		if !ok || err1 != nil || err2 != nil || le == "+Inf" {
			continue
		}
		h.bounds, h.counts = append(h.bounds, b), append(h.counts, uint64(c))
	}
	return h
}

// serveChild is the child's main: AURAX in front of upstreams until stdin
// closes.
func serveChild(upstreams string, slots int, profileDir string) error {
	base, _, stop, err := startAURAX(context.Background(), upstreams, "fake", slots, hopConfig)
	if err != nil {
		return err
	}
	defer stop()
	if profileDir != "" { // written before AURAX stops: the goroutines are those of a serving AURAX
		stopProfiles, err := startProfiles(profileDir)
		if err != nil {
			return err
		}
		defer stopProfiles()
	}
	fmt.Println(base)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// startProfiles starts the CPU profile, block and mutex sampling and the
// goroutine count; the returned func writes the other profiles.
func startProfiles(dir string) (func(), error) {
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return nil, err
	}
	stopTrace, err := startTrace(filepath.Join(dir, "trace.out"), traceAfter, traceFor)
	if err != nil {
		return nil, err
	}
	runtime.SetBlockProfileRate(int(10 * time.Microsecond)) // blocking of 10 µs or more
	runtime.SetMutexProfileFraction(10)
	gr, err := os.Create(filepath.Join(dir, "goroutines.txt"))
	if err != nil {
		stopTrace()
		pprof.StopCPUProfile()
		cpu.Close()
		return nil, err
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(gr, "%.0f s\t%d goroutines\n", time.Since(start).Seconds(), runtime.NumGoroutine())
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		gr.Close()
		stopTrace()
		pprof.StopCPUProfile()
		cpu.Close()
		var errs []error
		for _, name := range []string{"allocs", "block", "mutex", "goroutine"} {
			f, err := os.Create(filepath.Join(dir, name+".pprof"))
			if err == nil {
				err = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			fmt.Fprintln(os.Stderr, "profiles:", err)
		}
	}, nil
}

// The profile suite's execution trace (go tool trace; -pprof=sched for the
// scheduler's latencies) covers traceFor of the load from traceAfter on,
// once the connections are open: a few seconds, short enough to open.
const (
	traceAfter = 2 * time.Second
	traceFor   = 3 * time.Second
)

// startTrace writes an execution trace to path from after to after+d (or
// until the returned func is called).
func startTrace(path string, after, d time.Duration) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	started, stopped := false, false
	start := time.AfterFunc(after, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped && trace.Start(f) == nil {
			started = true
		}
	})
	stop := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		stopped = true
		if started {
			trace.Stop()
		}
		f.Close()
	}
	end := time.AfterFunc(after+d, stop)
	return func() { start.Stop(); end.Stop(); stop() }, nil
}

func (p *auraxProc) pid() int { return p.cmd.Process.Pid }
