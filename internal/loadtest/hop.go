package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/fakeollama"
)

// The hop suite: what one hop through AURAX adds to a request, beside what
// an nginx hop adds, to the same fixed-latency upstream, in one run with
// the rows interleaved round by round, so that every row sees the same
// machine. "Added" is a row's latency minus the direct row's of the same
// round, the median over the rounds.

type hopFlags struct {
	rates         []int
	duration      time.Duration
	rounds        int
	latency       time.Duration
	streamRate    int
	profileDir    string        // -suite profile: where the profiles go
	profileFor    time.Duration // -suite profile: how long the load runs
	profileStream bool          // -suite profile: streamed requests at streamRate
	compare       string        // another loadtest binary: its AURAX is one more row
}

// hopConfig is AURAX's configuration in the hop suite: the queue never
// refuses what the upstream can take.
func hopConfig(c *config.Config) {
	c.Queue.MaxWaiting, c.Queue.MaxWait = 16384, time.Minute
}

// hopTarget is one way to the upstream; own reads AURAX's own time
// (nil: not AURAX); pid is the proxy's process, whose CPU time a request
// is reported (0: none, the direct row).
type hopTarget struct {
	name, url string
	own       func() hist
	pid       int
}

// hopRig is the upstreams, nginx and the AURAX processes of the suite.
type hopRig struct {
	targets []hopTarget
	stop    func()
}

func startHopRig(latency time.Duration, compare string) (*hopRig, error) {
	opts := fakeollama.Options{Latency: latency, Tokens: 8, Interval: 2 * time.Millisecond, Models: []string{"fake"}}
	ups := make([]*fakeollama.Server, 5) // one, then a pool of four
	var stops []func()
	rig := &hopRig{stop: func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}}
	for i := range ups {
		up, err := fakeollama.Start(opts)
		if err != nil {
			rig.stop()
			return nil, err
		}
		ups[i] = up
		stops = append(stops, func() { up.Close() })
	}
	toOne := nginxGroup{name: "up", servers: []string{strings.TrimPrefix(ups[0].URL, "http://")}}
	ng, err := startNginx(toOne)
	if err != nil {
		rig.stop()
		return nil, err
	}
	stops = append(stops, ng.stop)
	// The control: a second nginx, the same as the first. What it adds
	// beyond the first is what two identical proxies differ by in this
	// run, the noise every "beyond nginx's" figure carries.
	ng2, err := startNginx(toOne)
	if err != nil {
		rig.stop()
		return nil, err
	}
	stops = append(stops, ng2.stop)
	one, err := startAURAXProc("", ups[0].URL, 4096, "")
	if err != nil {
		rig.stop()
		return nil, err
	}
	stops = append(stops, one.stop)
	urls, _ := hostPorts(ups[1:])
	four, err := startAURAXProc("", urls, 1024, "")
	if err != nil {
		rig.stop()
		return nil, err
	}
	stops = append(stops, four.stop)
	rig.targets = []hopTarget{
		{name: "direct to the upstream `/api/chat`", url: ups[0].URL + "/api/chat"},
		{name: "nginx hop `/api/chat`", url: ng.url("up") + "/api/chat", pid: ng.cmd.Process.Pid},
		{name: "a second nginx, the same (the control)", url: ng2.url("up") + "/api/chat", pid: ng2.cmd.Process.Pid},
		{name: "AURAX `/v1/chat/completions`", url: one.url + "/v1/chat/completions", own: one.overhead, pid: one.pid()},
		{name: "AURAX `/api/chat`", url: one.url + "/api/chat", own: one.overhead, pid: one.pid()},
		{name: "AURAX, pool of 4 engines, `/api/chat`", url: four.url + "/api/chat", own: four.overhead, pid: four.pid()},
	}
	if compare != "" {
		other, err := startAURAXProc(compare, ups[0].URL, 4096, "")
		if err != nil {
			rig.stop()
			return nil, err
		}
		stops = append(stops, other.stop)
		rig.targets = append(rig.targets, hopTarget{name: "AURAX of " + filepath.Base(compare) + " `/v1/chat/completions`",
			url: other.url + "/v1/chat/completions", own: other.overhead, pid: other.pid()})
	}
	return rig, nil
}

// hopRow is one target's figures over the rounds, in round order; cpu is
// the proxy process's CPU time a request, sys the kernel's part of it,
// switches its context switches a request.
type hopRow struct {
	p50, p99, own50, own99, cpu, sys []time.Duration
	okFrac, switches                 []float64
}

// measure runs load against t and appends its figures to r: latencies,
// AURAX's own time, the proxy's CPU time and context switches per request
// (requests: how many load sent).
func (r *hopRow) measure(t hopTarget, load func() (requests int)) {
	var before hist
	if t.own != nil {
		before = t.own()
	}
	var u0 usage
	if t.pid != 0 {
		u0 = procUsage(t.pid)
	}
	n := load()
	if t.pid != 0 {
		u, per := procUsage(t.pid), max(n, 1)
		r.cpu = append(r.cpu, (u.cpu-u0.cpu)/time.Duration(per))
		r.sys = append(r.sys, (u.sys-u0.sys)/time.Duration(per))
		r.switches = append(r.switches, float64(u.switches-u0.switches)/float64(per))
	}
	if t.own != nil {
		h := t.own().minus(before)
		r.own50, r.own99 = append(r.own50, h.quantile(0.5)), append(r.own99, h.quantile(0.99))
	}
}

func runHopSuite(f hopFlags) error {
	fmt.Printf("# One hop: direct, nginx, AURAX (%s; %d rounds of %v, interleaved; load average %s)\n\n",
		machine(), f.rounds, f.duration, loadavg())
	rig, err := startHopRig(f.latency, f.compare)
	if err != nil {
		return err
	}
	defer rig.stop()
	body := []byte(`{"model":"fake","messages":[{"role":"user","content":"Hello, how are you?"}],"stream":false}`)
	for _, t := range rig.targets { // connections open, code paged in
		attack(t.url, body, 200, time.Second)
	}
	for _, rate := range f.rates {
		rows := make([]hopRow, len(rig.targets))
		for range f.rounds {
			for i, t := range rig.targets {
				r := &rows[i]
				r.measure(t, func() int {
					m := attack(t.url, body, rate, f.duration)
					r.okFrac = append(r.okFrac, m.Success)
					r.p50, r.p99 = append(r.p50, m.Latencies.P50), append(r.p99, m.Latencies.P99)
					return int(m.Requests)
				})
			}
		}
		fmt.Printf("## %d requests/s, non-streamed, upstream latency %v (load average %s)\n\n", rate, f.latency, loadavg())
		printHop(rig.targets, rows, true)
	}
	return hopStreams(rig, f)
}

// hopStreams is the streamed rows: time to the first token.
func hopStreams(rig *hopRig, f hopFlags) error {
	stream := []byte(`{"model":"fake","messages":[{"role":"user","content":"Hello"}],"stream":true}`)
	rows := make([]hopRow, len(rig.targets))
	errs := 0
	for range f.rounds {
		for i, t := range rig.targets {
			r := &rows[i]
			t.own = nil // a stream's own time is not measured apart
			r.measure(t, func() int {
				ttft, e := paced(t.url, stream, f.streamRate, f.duration)
				errs += e
				r.okFrac = append(r.okFrac, float64(len(ttft))/float64(max(1, len(ttft)+e)))
				r.p50, r.p99 = append(r.p50, pct(ttft, 50)), append(r.p99, pct(ttft, 99))
				return len(ttft) + e
			})
		}
	}
	fmt.Printf("## Streamed, %d requests/s, 8 chunks 2 ms apart after %v: time to first token (load average %s)\n\n", f.streamRate, f.latency, loadavg())
	printHop(rig.targets, rows, false)
	if errs > 0 {
		return fmt.Errorf("%d streamed requests failed", errs)
	}
	return nil
}

// printHop writes the table: medians of the rounds, the added latency
// against the direct row (row 0), its ratio to the nginx row's (row 1) and
// what a row adds beyond the nginx row (its latency minus nginx's, round
// by round: the figure that still reads when nginx's hop adds nothing
// measurable, as with -pin), the p99 of the first and the last round (the
// drift).
func printHop(ts []hopTarget, rows []hopRow, own bool) {
	fmt.Println("| path | ok | p50 | p99 | added p50 | added p99 | × nginx's added p50 / p99 | beyond nginx's p50 / p99 | p99 first → last round | AURAX's own time p50 / p99 | proxy CPU a request (of it the kernel's) | proxy context switches a request |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	added := func(r, base []time.Duration) time.Duration {
		d := make([]time.Duration, len(r))
		for i := range r {
			d[i] = r[i] - base[i]
		}
		return med(d)
	}
	ng50, ng99 := added(rows[1].p50, rows[0].p50), added(rows[1].p99, rows[0].p99)
	for i, t := range ts {
		r := rows[i]
		a50, a99 := added(r.p50, rows[0].p50), added(r.p99, rows[0].p99)
		ratio, beyond, ownCol, cpuCol, swCol := "–", "–", "–", "–", "–"
		if len(r.cpu) > 0 {
			cpuCol = us(med(r.cpu)) + " (" + us(med(r.sys)) + ")"
			swCol = fmt.Sprintf("%.1f", med(r.switches))
		}
		if i >= 2 {
			ratio = times(a50, ng50) + " / " + times(a99, ng99)
			beyond = us(added(r.p50, rows[1].p50)) + " / " + us(added(r.p99, rows[1].p99))
		}
		if i == 0 {
			a50, a99 = 0, 0
		}
		if own && t.own != nil {
			ownCol = us(med(r.own50)) + " / " + us(med(r.own99))
		}
		fmt.Printf("| %s | %.2f%% | %s | %s | %s | %s | %s | %s | %s → %s | %s | %s | %s |\n", t.name, 100*med(r.okFrac),
			ms(med(r.p50)), ms(med(r.p99)), us(a50), us(a99), ratio, beyond, ms(r.p99[0]), ms(r.p99[len(r.p99)-1]), ownCol, cpuCol, swCol)
	}
	fmt.Println()
}

// times is a/b as "2.4×" (a below zero counts as zero), "–" when b is not
// above zero (nginx added nothing measurable).
func times(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f×", float64(max(a, 0))/float64(b))
}

// runProfile serves AURAX in a child process with its profiles on and
// sends it rate non-streamed /v1/chat/completions requests a second for
// f.profileFor (with f.profileStream, f.streamRate streamed ones, 8 chunks
// 2 ms apart).
func runProfile(f hopFlags) error {
	if err := os.MkdirAll(f.profileDir, 0o755); err != nil {
		return err
	}
	up, err := fakeollama.Start(fakeollama.Options{Latency: f.latency, Tokens: 8, Interval: 2 * time.Millisecond, Models: []string{"fake"}})
	if err != nil {
		return err
	}
	defer up.Close()
	a, err := startAURAXProc("", up.URL, 4096, f.profileDir)
	if err != nil {
		return err
	}
	url := a.url + "/v1/chat/completions"
	cpu0 := procUsage(a.pid()).cpu
	var what string
	var n int
	rate := f.rates[0]
	if f.profileStream {
		rate = f.streamRate
		stream := []byte(`{"model":"fake","messages":[{"role":"user","content":"Hello"}],"stream":true}`)
		ttft, errs := paced(url, stream, f.streamRate, f.profileFor)
		n = len(ttft) + errs
		what = fmt.Sprintf("%d streams/s: %d failed, time to first token p50 %s, p99 %s", f.streamRate, errs, ms(pct(ttft, 50)), ms(pct(ttft, 99)))
	} else {
		body := []byte(`{"model":"fake","messages":[{"role":"user","content":"Hello, how are you?"}],"stream":false}`)
		m := attack(url, body, f.rates[0], f.profileFor)
		h := a.overhead()
		n = int(m.Requests)
		what = fmt.Sprintf("%d requests/s: ok %.2f%%, p50 %s, p99 %s, own time p50 %s p99 %s", f.rates[0],
			100*m.Success, ms(m.Latencies.P50), ms(m.Latencies.P99), us(h.quantile(0.5)), us(h.quantile(0.99)))
	}
	cpu := (procUsage(a.pid()).cpu - cpu0) / time.Duration(max(n, 1))
	a.stop()
	fmt.Printf("profiled AURAX at %s, for %v (load average %s); CPU a request %s (the profiles and %v of trace on)\n", what, f.profileFor, loadavg(), us(cpu), traceFor)
	if st, err := readSched(filepath.Join(f.profileDir, "trace.out")); err != nil {
		fmt.Fprintln(os.Stderr, "trace:", err)
	} else {
		fmt.Printf("the scheduler (%v of the trace, %d requests/s): %s\n", traceFor, rate, st)
	}
	fmt.Printf("profiles in %s: cpu, allocs, block, mutex, goroutine (.pprof), gctrace.txt, goroutines.txt, trace.out (%v of the load from %v on)\n", f.profileDir, traceFor, traceAfter)
	return nil
}

// loadavg is the machine's 1, 5 and 15 minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return "unknown"
	}
	return strings.Join(fs[:3], " ")
}
