package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/fakeollama"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The pool suite: AURAX's routing over a pool of capacity-limited engines
// against nginx's round robin and least_conn over the same engines, side by
// side in one run, rounds interleaved.

type poolFlags struct {
	duration   time.Duration
	rounds     int
	latency    time.Duration // a fast engine's service time
	ollamaBin  string        // a real Ollama binary for the real-pool row (empty: skip)
	ollamaDir  string        // its models directory
	ollamaReqs int
}

// engineSet is four fake engines of two slots each; slow makes the last
// one 3× slower.
func engineSet(lat time.Duration, slow bool, opts fakeollama.Options) ([]*fakeollama.Server, float64, error) {
	var es []*fakeollama.Server
	capacity := 0.0
	for i := range 4 {
		o := opts
		o.Latency, o.Slots = lat, 2
		if slow && i == 3 {
			o.Latency = 3 * lat
		}
		if len(o.Models) == 0 {
			o.Models = []string{"fake"}
		}
		e, err := fakeollama.Start(o)
		if err != nil {
			return nil, 0, err
		}
		es = append(es, e)
		capacity += float64(o.Slots) / o.Latency.Seconds()
	}
	return es, capacity, nil
}

func hostPorts(es []*fakeollama.Server) (urls string, addrs []string) {
	for _, e := range es {
		addrs = append(addrs, strings.TrimPrefix(e.URL, "http://"))
	}
	var us []string
	for _, e := range es {
		us = append(us, e.URL)
	}
	return strings.Join(us, ","), addrs
}

// paths are the three ways to the same four engines.
type paths struct {
	names []string
	urls  map[string]string
	stop  func()
}

func threePaths(ctx context.Context, es []*fakeollama.Server, model string, mods ...func(*config.Config)) (*paths, error) {
	urls, addrs := hostPorts(es)
	aurax, _, stop, err := startAURAX(ctx, urls, model, 2, append([]func(*config.Config){func(c *config.Config) {
		c.Queue.MaxWaiting, c.Queue.MaxWait = 16384, 2*time.Minute
		c.Ollama.PSInterval = 500 * time.Millisecond
	}}, mods...)...)
	if err != nil {
		return nil, err
	}
	ng, err := startNginx(nginxGroup{name: "rr", servers: addrs}, nginxGroup{name: "lc", balance: "least_conn;", servers: addrs})
	if err != nil {
		stop()
		return nil, err
	}
	return &paths{
		names: []string{"AURAX", "nginx round robin", "nginx least_conn"},
		urls:  map[string]string{"AURAX": aurax + "/api/chat", "nginx round robin": ng.url("rr") + "/api/chat", "nginx least_conn": ng.url("lc") + "/api/chat"},
		stop:  func() { ng.stop(); stop() },
	}, nil
}

type row struct {
	p50, p99, max []time.Duration
	ok, n         []float64
}

func (r *row) add(m vegeta.Metrics) {
	r.p50 = append(r.p50, m.Latencies.P50)
	r.p99 = append(r.p99, m.Latencies.P99)
	r.max = append(r.max, m.Latencies.Max)
	r.ok = append(r.ok, m.Success)
	r.n = append(r.n, float64(m.Requests))
}

func med[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func chatBody(model string) []byte {
	return []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"Hello"}],"stream":false}`)
}

func runPoolSuite(ctx context.Context, f poolFlags) error {
	fmt.Printf("# The engine pool: AURAX vs nginx over the same engines (%d rounds of %v, interleaved; medians)\n\n", f.rounds, f.duration)
	for _, slow := range []bool{false, true} {
		es, capacity, err := engineSet(f.latency, slow, fakeollama.Options{})
		if err != nil {
			return err
		}
		ps, err := threePaths(ctx, es, "fake")
		if err != nil {
			return err
		}
		kind := "homogeneous: 4 engines × 2 slots, " + f.latency.String()
		if slow {
			kind = "one engine 3× slower: 3 × 2 slots at " + f.latency.String() + ", 1 × 2 slots at " + (3 * f.latency).String()
		}
		rate := int(0.8 * capacity)
		fmt.Printf("## (a) Latency at 80%% of capacity, %s (capacity %.1f req/s, offered %d req/s)\n\n", kind, capacity, rate)
		fmt.Println("| path | ok | p50 | p99 | max |")
		fmt.Println("|---|---|---|---|---|")
		rows := map[string]*row{}
		for range f.rounds {
			for _, name := range ps.names {
				if rows[name] == nil {
					rows[name] = &row{}
				}
				rows[name].add(attack(ps.urls[name], chatBody("fake"), rate, f.duration))
			}
		}
		for _, name := range ps.names {
			r := rows[name]
			fmt.Printf("| %s | %.2f%% | %s | %s | %s |\n", name, 100*med(r.ok), ms(med(r.p50)), ms(med(r.p99)), ms(med(r.max)))
		}
		fmt.Printf("\n## (b) Throughput at saturation, %s: closed loop, %d clients (3 per slot)\n\n", kind, 3*8)
		fmt.Println("| path | completed/s | of capacity | errors |")
		fmt.Println("|---|---|---|---|")
		for _, name := range ps.names {
			var tputs []float64
			errs := 0
			for range f.rounds {
				n, e := closedLoop(ps.urls[name], chatBody("fake"), 24, f.duration)
				tputs = append(tputs, float64(n)/f.duration.Seconds())
				errs += e
			}
			t := med(tputs)
			fmt.Printf("| %s | %.1f | %.1f%% | %d |\n", name, t, 100*t/capacity, errs)
		}
		fmt.Println()
		ps.stop()
		for _, e := range es {
			e.Close()
		}
	}
	if err := modelLoads(ctx, f); err != nil {
		return err
	}
	if f.ollamaBin != "" {
		return realPool(ctx, f)
	}
	return nil
}

// closedLoop runs clients that each send the next request when the last
// answered, for d; it returns the requests completed and the errors.
func closedLoop(url string, body []byte, clients int, d time.Duration) (int, int) {
	var done, errs atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(end) {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				if time.Now().Before(end) {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(done.Load()), int(errs.Load())
}

// modelLoads: two models over four engines that keep one model loaded
// each; half the requests for each model. Routing that knows which model
// each engine holds keeps them where they are; round robin swaps them.
func modelLoads(ctx context.Context, f poolFlags) error {
	fmt.Printf("## (c) Model loads on a two-model pool: 4 engines × 2 slots, one model loaded at a time, a load takes 500 ms; requests for A or B at random at 50%% of capacity for %v\n\n", f.duration)
	fmt.Println("| path | ok | model loads | p50 | p99 |")
	fmt.Println("|---|---|---|---|---|")
	for _, name := range []string{"AURAX", "nginx round robin", "nginx least_conn"} {
		es, capacity, err := engineSet(f.latency, false, fakeollama.Options{Models: []string{"a", "b"}, MaxLoaded: 1, LoadDelay: 500 * time.Millisecond})
		if err != nil {
			return err
		}
		ps, err := threePaths(ctx, es, "a", func(c *config.Config) { c.Ollama.LoadEstimate = 500 * time.Millisecond })
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(1, 2)) // the same sequence of models for every path
		var rmu sync.Mutex
		url := ps.urls[name]
		tr := func(t *vegeta.Target) error {
			rmu.Lock()
			m := "a"
			if rng.IntN(2) == 1 {
				m = "b"
			}
			rmu.Unlock()
			*t = vegeta.Target{Method: "POST", URL: url, Body: chatBody(m), Header: http.Header{"Content-Type": []string{"application/json"}}}
			return nil
		}
		// Warm each engine with one model first, the same for all paths.
		for i, e := range es {
			m := "a"
			if i%2 == 1 {
				m = "b"
			}
			resp, err := client.Post(e.URL+"/api/chat", "application/json", bytes.NewReader(chatBody(m)))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		time.Sleep(time.Second) // AURAX's probes see what each engine holds
		before := int64(0)
		for _, e := range es {
			before += e.Stats().Loads
		}
		a := vegeta.NewAttacker(vegeta.KeepAlive(true), vegeta.Connections(1024), vegeta.MaxWorkers(1024), vegeta.Timeout(2*time.Minute))
		var m vegeta.Metrics
		for res := range a.Attack(tr, vegeta.Rate{Freq: int(0.5 * capacity), Per: time.Second}, f.duration, name) {
			m.Add(res)
		}
		m.Close()
		loads := int64(0)
		for _, e := range es {
			loads += e.Stats().Loads
		}
		fmt.Printf("| %s | %.2f%% | %d | %s | %s |\n", name, 100*m.Success, loads-before, ms(m.Latencies.P50), ms(m.Latencies.P99))
		ps.stop()
		for _, e := range es {
			e.Close()
		}
	}
	fmt.Println()
	return nil
}

// realPool: AURAX over two real Ollamas against AURAX over one, the same
// closed-loop load of streamed chats.
func realPool(ctx context.Context, f poolFlags) error {
	fmt.Printf("## (e) Real Ollama: a pool of 2 engines against 1, aurax-tiny, 64 tokens, 4 clients, %d requests each\n\n", f.ollamaReqs)
	var engines []*ollamaProc
	for range 2 {
		e, err := startOllama(f.ollamaBin, f.ollamaDir)
		if err != nil {
			return err
		}
		defer e.kill()
		engines = append(engines, e)
	}
	fmt.Println("| engines | completed/s | latency p50 | latency p99 | TTFT p50 | TTFT p99 |")
	fmt.Println("|---|---|---|---|---|---|")
	body := []byte(`{"model":"aurax-tiny","messages":[{"role":"user","content":"Hello"}],"stream":true,"options":{"num_predict":64,"seed":1,"temperature":0}}`)
	for _, n := range []int{1, 2} {
		var urls []string
		for _, e := range engines[:n] {
			urls = append(urls, e.url)
		}
		aurax, _, stop, err := startAURAX(ctx, strings.Join(urls, ","), "aurax-tiny", 1)
		if err != nil {
			return err
		}
		var mu sync.Mutex
		var lat, ttft []time.Duration
		start := time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		deadline := time.Now().Add(5 * time.Minute)
		for range 4 {
			wg.Go(func() {
				for next.Add(1) <= int64(f.ollamaReqs) && time.Now().Before(deadline) {
					t0 := time.Now()
					tt, err := firstToken(aurax+"/api/chat", body)
					if err != nil {
						fmt.Fprintln(os.Stderr, "real pool:", err)
						continue
					}
					mu.Lock()
					lat, ttft = append(lat, time.Since(t0)), append(ttft, tt)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		el := time.Since(start)
		stop()
		fmt.Printf("| %d | %.1f | %s | %s | %s | %s |\n", n, float64(len(lat))/el.Seconds(), ms(pct(lat, 50)), ms(pct(lat, 99)), ms(pct(ttft, 50)), ms(pct(ttft, 99)))
	}
	fmt.Println()
	return nil
}

// ollamaProc is a real `ollama serve` in its own process group.
type ollamaProc struct {
	cmd *exec.Cmd
	url string
}

func startOllama(bin, models string) (*ollamaProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "OLLAMA_HOST="+addr, "OLLAMA_MODELS="+models, "OLLAMA_NUM_PARALLEL=1", "OLLAMA_NOPRUNE=1")
	logf, err := os.Create(filepath.Join(os.TempDir(), "aurax-loadtest-ollama-"+fmt.Sprint(port)+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &ollamaProc{cmd: cmd, url: "http://" + addr}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(p.url + "/api/version"); err == nil {
			resp.Body.Close()
			return p, nil
		}
	}
	p.kill()
	return nil, fmt.Errorf("ollama on %s did not answer", addr)
}

// kill ends the server and its runners.
func (p *ollamaProc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
}
