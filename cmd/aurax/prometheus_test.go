package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/scaling"
	"github.com/stretchr/testify/require"
)

// promWindow is the signals' window in this test, and the range of its
// queries: the default queries with [1m] (metrics.window's default) made
// this, so that the test does not wait minutes.
const promWindow = 30 * time.Second

// TestPrometheusObserverMeasuresWhatLocalDoes runs a real AURAX in front of
// the real tiny-model Ollama, scraped every second by Debian's real
// Prometheus, and compares the Prometheus observer (the default queries)
// with the local observer over the same window of a bounded load: chat
// requests, half of them streamed, plus requests for a missing model (4xx,
// which neither counts as an error). Arrival and completion rates agree
// within 15 %, p95 falls in the same histogram bucket, error rates agree,
// and queue, in flight and slots are equal once idle.
func TestPrometheusObserverMeasuresWhatLocalDoes(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		testenv.Missing(t, "no prometheus binary (Debian package prometheus: scripts/deploy-tools-install.sh)")
	}
	ollama := testenv.Ollama(t)
	addr := freeAddr(t)
	_, out := aurax(t, []string{"AURAX_SERVER_LISTEN=" + addr, "AURAX_OLLAMA_URL=" + ollama,
		"AURAX_MODELS_DEFAULT=" + testenv.ChatModel, "AURAX_MODELS_EMBEDDING=", "AURAX_RAG_PATH=" + t.TempDir() + "/rag.db",
		"AURAX_METRICS_WINDOW=" + promWindow.String(), "AURAX_SERVER_LOG_LEVEL=warn"}, "serve")
	base := "http://" + addr
	waitFor(t, 30*time.Second, func() bool { return get(base+"/health/ready") == nil }, "aurax never ready: %s", out)
	prom := startPrometheus(t, bin, addr)

	local, err := scaling.NewObserver(scaling.Config{Mode: scaling.ModeLocal}, func() metrics.Signals { return signals(t, base) }, nil)
	require.NoError(t, err)
	queries := scaling.DefaultQueries()
	for _, q := range []*string{&queries.ArrivalRate, &queries.DoneRate, &queries.P95Latency, &queries.ErrorRate, &queries.CPUPercent} {
		*q = strings.ReplaceAll(*q, "[1m]", "["+promWindow.String()+"]")
	}
	remote := &scaling.PrometheusObserver{URL: prom, Queries: queries, Client: &http.Client{Timeout: 5 * time.Second}}

	// Warm the model (its load is no part of the window) and let each
	// model's counters exist in Prometheus before the window starts: rate()
	// reads a series' first sample as its start, so the requests before it
	// would not count.
	chat(t, base, testenv.ChatModel, false)
	chat(t, base, "no-such-model", false)
	waitFor(t, 30*time.Second, func() bool { return promValue(t, prom, `sum(aurax_model_arrivals_total)`) == 2 }, "prometheus never saw the warm-up")
	time.Sleep(2 * time.Second) // the warm-up leaves both windows
	start := time.Now()
	_, err = local.Observe(t.Context())
	require.NoError(t, err)
	// Both windows end at start+promWindow-1s: Prometheus' range then has a
	// sample from before the load, which begins 2 s in.
	time.Sleep(2 * time.Second)

	const requests, missing = 40, 4
	load(t, base, requests, missing)
	arrivals := float64(signals(t, base).ArrivalsTotal - 2)
	waitFor(t, 30*time.Second, func() bool {
		return promValue(t, prom, `sum(aurax_model_arrivals_total)`) == arrivals+2 &&
			promValue(t, prom, `sum(aurax_model_processing_duration_seconds_count)`) == arrivals+2
	}, "prometheus never saw the last requests")
	require.Less(t, time.Since(start), promWindow-2*time.Second, "the load outlasted the window; the machine is too slow for this test")
	time.Sleep(time.Until(start.Add(promWindow - time.Second))) // both windows: the load alone

	lo, err := local.Observe(t.Context())
	require.NoError(t, err)
	po, err := remote.Observe(t.Context())
	require.NoError(t, err)
	t.Logf("arrivals %.0f in %s; local: arrivals %.3f/s, done %.3f/s, p95 %.3f s, errors %.3f; prometheus: arrivals %.3f/s, done %.3f/s, p95 %.3f s, errors %.3f",
		arrivals, time.Since(start).Round(time.Millisecond), lo.ArrivalRate, lo.DoneRate, lo.P95LatencyS, lo.ErrorRate,
		po.ArrivalRate, po.DoneRate, po.P95LatencyS, po.ErrorRate)
	t.Logf("local: CPU %.2f %%, memory %.3f %%; prometheus: CPU %.2f %%, memory %.3f %%", lo.CPUPercent, lo.MemoryPercent, po.CPUPercent, po.MemoryPercent)

	require.Equal(t, lo.Replicas, po.Replicas, "replicas")
	require.Equal(t, lo.Slots, po.Slots, "slots")
	require.Equal(t, lo.Starting, po.Starting, "engines starting")
	require.Equal(t, lo.QueueDepth, po.QueueDepth, "queue depth, idle")
	require.Equal(t, lo.InFlight, po.InFlight, "in flight, idle")
	require.Positive(t, lo.ArrivalRate)
	require.InEpsilon(t, lo.ArrivalRate, po.ArrivalRate, 0.15, "arrival rate")
	require.InEpsilon(t, lo.DoneRate, po.DoneRate, 0.15, "done rate")
	require.Equal(t, bucketOf(lo.P95LatencyS), bucketOf(po.P95LatencyS), "p95 %.3f s and %.3f s in different buckets", lo.P95LatencyS, po.P95LatencyS)
	require.Zero(t, lo.ErrorRate, "a 404 is the client's, not an error")
	require.InDelta(t, lo.ErrorRate, po.ErrorRate, 1e-9, "error rate")
	// CPU and memory over the same denominators (the cgroup's quota and
	// limit, else the machine's): memory moves little between a scrape and
	// now; CPU is over different spans, so only its presence is compared.
	require.Positive(t, lo.MemoryPercent)
	require.InEpsilon(t, lo.MemoryPercent, po.MemoryPercent, 0.25, "memory %% of the limit")
	require.Positive(t, po.CPUPercent, "CPU %% after the load")
	require.LessOrEqual(t, po.CPUPercent, 100.0, "CPU %% of the cores this process may use")
}

// processingBuckets are aurax_model_processing_duration_seconds' buckets.
var processingBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120}

func bucketOf(s float64) int {
	i, _ := slices.BinarySearch(processingBuckets, s)
	return i
}

// load sends n chat requests, four at a time, every other one streamed,
// and missing requests for a model no engine has.
func load(t *testing.T, base string, n, missing int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range n + missing {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if i >= n {
				chat(t, base, "no-such-model", false)
				return
			}
			chat(t, base, testenv.ChatModel, i%2 == 1)
		})
	}
	wg.Wait()
}

// chat sends one short chat completion and reads the whole answer.
func chat(t *testing.T, base, model string, stream bool) {
	body := fmt.Sprintf(`{"model":%q,"stream":%t,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, model, stream)
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || (model == testenv.ChatModel) != (resp.StatusCode == http.StatusOK) {
		t.Errorf("chat %s: %d %v %s", model, resp.StatusCode, err, b)
	}
}

func signals(t *testing.T, base string) metrics.Signals {
	t.Helper()
	resp, err := http.Get(base + "/v1/scaling/signals")
	require.NoError(t, err)
	defer resp.Body.Close()
	s, err := scaling.DecodeSignals(resp.Body)
	require.NoError(t, err)
	return s
}

// startPrometheus runs Prometheus on a loopback port, scraping the AURAX
// at target every second, and returns its URL once it has scraped twice.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: aurax\n    static_configs:\n      - targets: [%q]\n", target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644))
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	u := "http://" + addr
	waitFor(t, 30*time.Second, func() bool { return get(u+"/-/ready") == nil }, "prometheus never ready: %s", &out)
	waitFor(t, 30*time.Second, func() bool {
		return promValue(t, u, `count_over_time(up{job="aurax"}[1m])`) >= 2 && promValue(t, u, `min_over_time(up{job="aurax"}[1m])`) == 1
	}, "prometheus did not scrape aurax twice: %s", &out)
	return u
}

// promValue runs an instant query that returns one sample; NaN when it
// returns none.
func promValue(t *testing.T, base, q string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	if len(body.Data.Result) != 1 {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(fmt.Sprint(body.Data.Result[0].Value[1]), 64)
	require.NoError(t, err)
	return v
}

func get(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return nil
}

// waitFor polls cond until it holds, failing t after limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf(format, args...)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
