// Command loadtest measures AURAX's overhead on loopback, the method Bifrost
// publishes: an Ollama-wire upstream with a fixed latency, load at a fixed
// rate (vegeta), overhead = latency through AURAX minus the fixed latency,
// and, in the same run, the same load sent straight to the upstream. It also
// measures time to first token on streams and, with -ollama, AURAX in front
// of a real Ollama against that Ollama directly, requests interleaved.
// The hop suite puts an nginx hop beside AURAX (run in a process of its
// own, as nginx is) to the same upstream; the profile suite writes AURAX's
// pprof profiles, gctrace and goroutine count under load.
//
//	go run ./internal/loadtest -rates 500,1000,2000 -duration 10s [-ollama http://127.0.0.1:11435]
//	go run ./internal/loadtest -suite hop -rates 1000,2000 -duration 6s -rounds 3
//	go run ./internal/loadtest -suite profile -rates 1000 -profile-duration 30s -profile /tmp/prof
//
// Every loop is bounded in count and time; all traffic stays on 127.0.0.1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/aurax/aurax/internal/sysmon"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/server"
	"github.com/prometheus/client_golang/prometheus"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	rates := flag.String("rates", "500,1000,2000", "request rates per second (non-streaming)")
	duration := flag.Duration("duration", 10*time.Second, "length of each rate step")
	latency := flag.Duration("latency", 50*time.Millisecond, "the upstream's fixed latency")
	streamRate := flag.Int("stream-rate", 200, "rate of the streaming TTFT step")
	ollamaURL := flag.String("ollama", "", "a real Ollama serving aurax-tiny, for the side-by-side run (empty: skip)")
	ollamaN := flag.Int("ollama-requests", 200, "requests in the real-Ollama run (half direct, half through AURAX)")
	suite := flag.String("suite", "overhead", "overhead (one upstream: AURAX's own cost), hop (direct, nginx and AURAX side by side), "+
		"profile (AURAX's profiles under load, into -profile), pool (routing over four engines vs nginx), or all (overhead, hop, pool)")
	rounds := flag.Int("rounds", 3, "hop and pool suites: interleaved rounds per row (medians reported)")
	profileDir := flag.String("profile", "", "profile suite: the directory for the profiles")
	profileFor := flag.Duration("profile-duration", 30*time.Second, "profile suite: how long the load runs (at the first of -rates)")
	profileStream := flag.Bool("profile-stream", false, "profile suite: streamed requests at -stream-rate (8 chunks 2 ms apart) instead of non-streamed ones")
	compare := flag.String("compare", "", "hop suite: another build of this command, whose AURAX is one more row (a before/after in one run)")
	flag.IntVar(&childProcs, "aurax-procs", 0, "hop and profile suites: GOMAXPROCS of the AURAX processes (0: Go's default)")
	pinN := flag.Int("pin", 0, "hop and profile suites: the proxies (nginx, AURAX) on the last N CPUs, the load generator and the upstreams on the rest (0: unpinned)")
	flag.StringVar(&childGodebug, "aurax-godebug", "", "hop and profile suites: GODEBUG of the AURAX processes")
	serve := flag.String("serve", "", "internal: serve AURAX in front of these upstreams until stdin closes (the hop suite's child)")
	serveSlots := flag.Int("serve-slots", 4096, "internal: -serve's slots per engine")
	poolLatency := flag.Duration("pool-latency", 100*time.Millisecond, "pool suite: a fast engine's service time")
	ollamaBin := flag.String("ollama-bin", "", "pool suite: a real ollama binary, for the pool-of-2 vs 1 row (empty: skip)")
	ollamaModels := flag.String("ollama-models", "", "pool suite: the models directory holding aurax-tiny")
	flag.Parse()
	if *serve != "" {
		if err := sysmon.Exec(); err != nil { // as aurax serve does
			fmt.Fprintln(os.Stderr, "loadtest -serve:", err)
		}
		if err := serveChild(*serve, *serveSlots, *profileDir); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest -serve:", err)
			os.Exit(1)
		}
		return
	}
	if *pinN > 0 {
		if *suite != "hop" && *suite != "profile" {
			fmt.Fprintln(os.Stderr, "loadtest: -pin is for the hop and profile suites, whose proxies run in processes of their own")
			os.Exit(2)
		}
		line, err := pin(*pinN)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(2)
		}
		fmt.Printf("pinned: %s\n\n", line)
	}
	hf := hopFlags{duration: *duration, rounds: *rounds, latency: *latency, streamRate: *streamRate, profileDir: *profileDir, profileFor: *profileFor, profileStream: *profileStream, compare: *compare}
	var err error
	if hf.rates, err = parseRates(*rates); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	if *suite == "overhead" || *suite == "all" {
		err = run(*rates, *duration, *latency, *streamRate, *ollamaURL, *ollamaN)
	}
	if err == nil && (*suite == "hop" || *suite == "all") {
		err = runHopSuite(hf)
	}
	if err == nil && *suite == "profile" {
		if hf.profileDir == "" {
			err = errors.New("-suite profile needs -profile DIR")
		} else {
			err = runProfile(hf)
		}
	}
	if err == nil && (*suite == "pool" || *suite == "all") {
		err = runPoolSuite(context.Background(), poolFlags{duration: *duration, rounds: *rounds, latency: *poolLatency,
			ollamaBin: *ollamaBin, ollamaDir: *ollamaModels, ollamaReqs: *ollamaN})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// startAURAX serves an in-process AURAX in front of upstream (one engine
// URL or several, comma-separated) on loopback, slots per engine.
func startAURAX(ctx context.Context, upstream, model string, slots int, mods ...func(*config.Config)) (string, *prometheus.Registry, func(), error) {
	cfg := config.Default()
	cfg.Ollama.URL = upstream
	cfg.Models.Default, cfg.Models.Embedding = model, ""
	cfg.Ollama.Parallel, cfg.Queue.MaxWaiting = slots, 4*slots
	cfg.Server.LogLevel = "error"
	for _, mod := range mods {
		mod(&cfg)
	}
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{}, logger)
	po, err := cfg.PoolOptions()
	if err != nil {
		return "", nil, nil, err
	}
	po.Ollama.MaxIdleConns = 2 * slots
	po.Registerer = reg
	p, err := pool.New(po)
	if err != nil {
		return "", nil, nil, err
	}
	svc := models.NewService(p, models.Config{DefaultChat: model, Aliases: map[string]string{}})
	srv := server.New(server.Options{Config: cfg, Pool: p, Models: svc, Metrics: m, Logger: logger, Version: "loadtest"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(rctx, ln, nil) }()
	base := "http://" + ln.Addr().String()
	for i := 0; i < 200; i++ { // ready within 10 s
		if resp, err := http.Get(base + "/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base, reg, func() { cancel(); <-done; m.Close() }, nil
}

func run(rateList string, duration, latency time.Duration, streamRate int, ollamaURL string, ollamaN int) error {
	ctx := context.Background()
	fmt.Printf("# AURAX overhead on loopback (%s)\n\n", machine())
	up, err := fakeollama.Start(fakeollama.Options{Latency: latency, Tokens: 8, Interval: 2 * time.Millisecond, Models: []string{"fake"}})
	if err != nil {
		return err
	}
	defer up.Close()
	aurax, reg, stop, err := startAURAX(ctx, up.URL, "fake", 4096)
	if err != nil {
		return err
	}
	defer stop()

	fmt.Printf("Non-streaming, upstream latency %v, %v per step; overhead = latency - %v.\n\n", latency, duration, latency)
	fmt.Println("| rate/s | path | ok | p50 | p90 | p99 | max | p50 − 50 ms | p99 − 50 ms | AURAX's own time p50 / p99 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	body := []byte(`{"model":"fake","messages":[{"role":"user","content":"Hello, how are you?"}],"stream":false}`)
	for _, f := range strings.Split(rateList, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("rate %q: %w", f, err)
		}
		for _, tgt := range []struct{ name, url string }{
			{"direct to upstream /api/chat", up.URL + "/api/chat"},
			{"through AURAX /v1/chat/completions", aurax + "/v1/chat/completions"},
			{"through AURAX /api/chat", aurax + "/api/chat"},
		} {
			before := overhead(reg)
			m := attack(tgt.url, body, rate, duration)
			own := "–"
			if strings.Contains(tgt.name, "AURAX") {
				h := overhead(reg).minus(before)
				own = fmt.Sprintf("%s / %s", us(h.quantile(0.5)), us(h.quantile(0.99)))
			}
			fmt.Printf("| %d | %s | %.2f%% | %s | %s | %s | %s | %s | %s | %s |\n", rate, tgt.name, 100*m.Success,
				ms(m.Latencies.P50), ms(m.Latencies.P90), ms(m.Latencies.P99), ms(m.Latencies.Max),
				us(m.Latencies.P50-latency), us(m.Latencies.P99-latency), own)
		}
	}

	fmt.Printf("\nStreaming, %d requests/s for %v, 8 chunks 2 ms apart after %v: time to first token.\n\n", streamRate, duration, latency)
	fmt.Println("| path | n | errors | TTFT p50 | TTFT p99 | TTFT p50 overhead | TTFT p99 overhead |")
	fmt.Println("|---|---|---|---|---|---|---|")
	stream := []byte(`{"model":"fake","messages":[{"role":"user","content":"Hello"}],"stream":true}`)
	for _, tgt := range []struct{ name, url string }{
		{"direct to upstream /api/chat", up.URL + "/api/chat"},
		{"through AURAX /v1/chat/completions (SSE)", aurax + "/v1/chat/completions"},
		{"through AURAX /api/chat (NDJSON)", aurax + "/api/chat"},
	} {
		ttft, errs := paced(tgt.url, stream, streamRate, duration)
		p50, p99 := pct(ttft, 50), pct(ttft, 99)
		fmt.Printf("| %s | %d | %d | %s | %s | %s | %s |\n", tgt.name, len(ttft), errs, ms(p50), ms(p99), us(p50-latency), us(p99-latency))
	}

	if ollamaURL != "" {
		if err := realOllama(ctx, ollamaURL, ollamaN); err != nil {
			return err
		}
	}
	return nil
}

// machine names the Go version, the cores and the time of the run.
func machine() string {
	return fmt.Sprintf("%s, %d cores, GOMAXPROCS %d, %s", runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))
}

func parseRates(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || rate <= 0 {
			return nil, fmt.Errorf("rate %q: not a positive number", f)
		}
		out = append(out, rate)
	}
	return out, nil
}

func attack(url string, body []byte, rate int, d time.Duration) vegeta.Metrics {
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "POST", URL: url, Body: body,
		Header: http.Header{"Content-Type": []string{"application/json"}}})
	// An attack's connections are closed when it ends: rounds of attacks
	// would otherwise pile up idle connections until the process runs out
	// of file descriptors.
	t := &http.Transport{MaxIdleConnsPerHost: 4096, MaxIdleConns: 4096, DisableCompression: true}
	defer t.CloseIdleConnections()
	a := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: t, Timeout: 30 * time.Second}), vegeta.MaxWorkers(4096))
	var m vegeta.Metrics
	for res := range a.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, url) {
		m.Add(res)
	}
	m.Close()
	return m
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxIdleConns: 4096}, Timeout: 60 * time.Second}

// paced starts rate requests per second for d and returns each one's time
// to the first content chunk.
func paced(url string, body []byte, rate int, d time.Duration) ([]time.Duration, int) {
	var mu sync.Mutex
	var out []time.Duration
	errs := 0
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := firstToken(url, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if errs == 0 {
					fmt.Fprintf(os.Stderr, "first error on %s: %v\n", url, err)
				}
				errs++
				return
			}
			out = append(out, t)
		}()
	}
	wg.Wait()
	return out, errs
}

// firstToken posts body and returns the time until the first line that
// carries generated text, then reads the stream to its end.
func firstToken(url string, body []byte) (time.Duration, error) {
	start := time.Now()
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	var ttft time.Duration
	for {
		line, err := br.ReadBytes('\n')
		if ttft == 0 && bytes.Contains(line, []byte(`"content":"`)) && !bytes.Contains(line, []byte(`"content":""`)) {
			ttft = time.Since(start)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if ttft == 0 {
		return 0, fmt.Errorf("no content in stream")
	}
	return ttft, nil
}

// realOllama compares AURAX in front of a real Ollama with that Ollama
// directly, alternating the two so both see the same machine noise.
func realOllama(ctx context.Context, ollamaURL string, n int) error {
	aurax, _, stop, err := startAURAX(ctx, ollamaURL, "aurax-tiny", 4)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("\nReal Ollama (%s, aurax-tiny, 16 tokens), %d requests alternating direct / through AURAX, 4 at a time.\n\n", ollamaURL, n)
	fmt.Println("| path | n | latency p50 | latency p99 | TTFT p50 | TTFT p99 |")
	fmt.Println("|---|---|---|---|---|---|")
	opts := `"options":{"num_predict":16,"seed":1,"temperature":0}`
	type series struct {
		name, url string
		body      []byte
		lat, ttft []time.Duration
	}
	all := []*series{
		{name: "direct to Ollama /api/chat", url: ollamaURL + "/api/chat", body: []byte(`{"model":"aurax-tiny","messages":[{"role":"user","content":"Hello"}],"stream":true,` + opts + `}`)},
		{name: "through AURAX /api/chat", url: aurax + "/api/chat", body: []byte(`{"model":"aurax-tiny","messages":[{"role":"user","content":"Hello"}],"stream":true,` + opts + `}`)},
		{name: "through AURAX /v1/chat/completions", url: aurax + "/v1/chat/completions", body: []byte(`{"model":"aurax-tiny","messages":[{"role":"user","content":"Hello"}],"stream":true,"max_tokens":16,"seed":1,"temperature":0}`)},
	}
	var mu sync.Mutex
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		s := all[i%len(all)]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			start := time.Now()
			ttft, err := firstToken(s.url, s.body)
			if err != nil {
				fmt.Fprintln(os.Stderr, s.name, err)
				return
			}
			mu.Lock()
			s.lat = append(s.lat, time.Since(start))
			s.ttft = append(s.ttft, ttft)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, s := range all {
		fmt.Printf("| %s | %d | %s | %s | %s | %s |\n", s.name, len(s.lat), ms(pct(s.lat, 50)), ms(pct(s.lat, 99)), ms(pct(s.ttft, 50)), ms(pct(s.ttft, 99)))
	}
	return nil
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

// hist is a snapshot of aurax_overhead_seconds: cumulative bucket counts.
type hist struct {
	bounds []float64
	counts []uint64
}

func overhead(reg *prometheus.Registry) hist {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "aurax_overhead_seconds" || len(mf.GetMetric()) == 0 {
			continue
		}
		var h hist
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
			h.counts = append(h.counts, b.GetCumulativeCount())
		}
		return h
	}
	return hist{}
}

func (h hist) minus(o hist) hist {
	out := hist{bounds: h.bounds, counts: slices.Clone(h.counts)}
	for i := range out.counts {
		if i < len(o.counts) {
			out.counts[i] -= o.counts[i]
		}
	}
	return out
}

// quantile interpolates linearly inside the bucket, as histogram_quantile does.
func (h hist) quantile(q float64) time.Duration {
	if len(h.counts) == 0 || h.counts[len(h.counts)-1] == 0 {
		return 0
	}
	rank := q * float64(h.counts[len(h.counts)-1])
	lo, prev := 0.0, uint64(0)
	for i, c := range h.counts {
		if float64(c) >= rank {
			frac := (rank - float64(prev)) / float64(c-prev)
			return time.Duration((lo + frac*(h.bounds[i]-lo)) * float64(time.Second))
		}
		lo, prev = h.bounds[i], c
	}
	return time.Duration(h.bounds[len(h.bounds)-1] * float64(time.Second))
}
