package runpod

import (
	"bytes"
	"flag"
	"fmt"
	"html"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aurax/aurax/internal/fakerunpod"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/sim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite docs/img/runpod-sim-day.svg")

// tracePath finds ../shared/traces/NAME from the module root (or
// $AURAX_TRACES/NAME).
func tracePath(t *testing.T, name string) string {
	t.Helper()
	if d := os.Getenv("AURAX_TRACES"); d != "" {
		return filepath.Join(d, name)
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "traces", name)
		}
		if dir == filepath.Dir(dir) {
			t.Fatal("module root not found")
		}
	}
}

// sample is the endpoint every minute of the replay.
type sample struct {
	T               float64
	Arrivals        int
	Queue, Workers  int
	Min, Max        int
	BaselineWorkers int
	BaselineQueue   int
	Load            float64
}

// TestSimulatedDay replays the Azure code trace (58 min, 8,819 requests)
// through RunPod's queue and scaler (the fake's Replay) on a virtual clock,
// with AURAX's controller setting the bounds through the real provider and
// observer over the fake's API, and compares it with RunPod's scaler alone
// at the seed's fixed prod bounds (min 2, max 50).
func TestSimulatedDay(t *testing.T) {
	path := tracePath(t, "azure-llm-2023-code.csv")
	f, err := os.Open(path)
	if err != nil {
		testenv.Missing(t, "trace not found: "+err.Error())
	}
	reqs, err := sim.ParseTrace(f)
	f.Close()
	require.NoError(t, err)
	opt := sim.DefaultOptions() // 4 slots, 4,000 prefill / 40 decode tokens/s, 60 s cold start, SLO wait 2 s
	jobs := make([]fakerunpod.ReplayJob, len(reqs))
	for i, r := range reqs {
		jobs[i] = fakerunpod.ReplayJob{At: r.At, Service: float64(r.Prompt)/opt.Model.PrefillTPS + float64(r.Gen)/opt.Model.DecodeTPS}
	}
	model := fakerunpod.ReplayModel{Slots: opt.Model.Slots, ColdStart: opt.Model.ColdStart}
	// The prod endpoint of deploy/runpod, scaled to 4 slots per worker:
	// REQUEST_COUNT at 80 % of the slots (the seed's scale-up threshold),
	// idle timeout 60 s (its cooldown).
	ep := fakerunpod.Endpoint{ID: "aurax-prod", Name: "aurax",
		Workers: fakerunpod.Workers{Min: 2, Max: 50, IdleTimeout: 60},
		Scaling: fakerunpod.Scaling{Type: "REQUEST_COUNT", RequestCount: 3}}
	horizon := reqs[len(reqs)-1].At + 600
	const every = 60.0

	baseline := fakerunpod.NewReplay(jobs, model, ep)
	var samples []sample
	var patchTimes []float64
	var stats fakerunpod.ReplayStats
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		clock := func() float64 { return time.Since(start).Seconds() }
		replay := fakerunpod.NewReplay(jobs, model, ep)
		api := fakerunpod.New(testKey, ep)
		api.Now = time.Now
		api.OnChange(replay.SetEndpoint)
		api.SetHealth(func() fakerunpod.Health { replay.AdvanceTo(clock()); return replay.Health() })

		cfg := DefaultConfig()
		cfg.EndpointID, cfg.APIKey, cfg.WorkerSlots = ep.ID, testKey, model.Slots
		cfg.BaseURL, cfg.QueueURL = "http://api.runpod.test/v2", "http://queue.runpod.test/v2"
		cfg.IdleTimeout, cfg.ScalerType, cfg.ScalerValue = 60*time.Second, ScalerRequestCount, 3
		hc := &http.Client{Transport: api.Transport()}
		prov, err := New(cfg, hc, nil)
		require.NoError(t, err)
		obs, err := NewObserver(cfg, hc, nil)
		require.NoError(t, err)
		sc := scaling.DefaultConfig()
		sc.Profile, sc.Provider, sc.Mode = scaling.ProfileProd, "runpod", scaling.ModeLocal
		ctrl, err := scaling.NewController(sc, obs, prov, prometheus.NewRegistry(), nil)
		require.NoError(t, err)

		next, lastArr := every, 0
		for clock() < horizon {
			time.Sleep(sc.Interval)
			replay.AdvanceTo(clock())
			ctrl.Tick(t.Context())
			for next <= clock() {
				baseline.AdvanceTo(next)
				e := api.Endpoint()
				h := replay.Health()
				arr := 0
				for _, j := range jobs[lastArr:] {
					if j.At > next {
						break
					}
					arr++
				}
				lastArr += arr
				samples = append(samples, sample{T: next, Arrivals: arr, Queue: int(h.Jobs.InQueue), Workers: replay.Workers(),
					Min: e.Workers.Min, Max: e.Workers.Max, BaselineWorkers: baseline.Workers(), BaselineQueue: int(baseline.Health().Jobs.InQueue)})
				next += every
			}
		}
		for _, r := range api.Requests() {
			if r.Method == "PATCH" {
				patchTimes = append(patchTimes, r.Time.Sub(start).Seconds())
			}
			require.Less(t, r.Status, 300, "%s %s answered %d: %s", r.Method, r.Path, r.Status, r.Body)
		}
		stats = replay.Stats(opt.Model.SLOWait)
	})
	baseline.AdvanceTo(horizon)
	bstats := baseline.Stats(opt.Model.SLOWait)

	var tbl strings.Builder
	fmt.Fprintf(&tbl, "| min | arrivals/min | queue | workers | workers.min | workers.max | RunPod alone: workers | queue |\n|---|---|---|---|---|---|---|---|\n")
	for i, s := range samples {
		if i%5 == 4 {
			fmt.Fprintf(&tbl, "| %.0f | %d | %d | %d | %d | %d | %d | %d |\n", s.T/60, s.Arrivals, s.Queue, s.Workers, s.Min, s.Max, s.BaselineWorkers, s.BaselineQueue)
		}
	}
	fmt.Fprintf(&tbl, "\n| run | jobs | wait ≤ 2 s | p50 wait s | p99 wait s | worker-h | PATCHes |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&tbl, "| AURAX controller + RunPod scaler | %d | %.4f | %.2f | %.1f | %.2f | %d |\n", stats.Jobs, stats.Attainment, stats.P50WaitS, stats.P99WaitS, stats.WorkerHours, len(patchTimes))
	fmt.Fprintf(&tbl, "| RunPod scaler alone (min 2, max 50) | %d | %.4f | %.2f | %.1f | %.2f | 0 |\n", bstats.Jobs, bstats.Attainment, bstats.P50WaitS, bstats.P99WaitS, bstats.WorkerHours)
	t.Logf("simulated day, code trace:\n%s", tbl.String())

	require.Equal(t, len(jobs), stats.Jobs, "every job served")
	require.NotEmpty(t, patchTimes, "the controller moved the bounds")
	require.Less(t, len(patchTimes), 200, "PATCHes are bounded (sent only on change)")
	for _, s := range samples {
		require.LessOrEqual(t, s.Min, s.Max)
		require.Equal(t, 50, s.Max, "workers.max stays at the budget")
	}
	require.Greater(t, stats.Attainment, bstats.Attainment, "the controller's floor beats RunPod's scaler alone")
	if *update {
		out := filepath.Join("..", "..", "docs", "img", "runpod-sim-day.svg")
		require.NoError(t, os.WriteFile(out, plotDay(samples, stats, bstats), 0o644))
	}
}

// plotDay draws the bounds over time: arrivals per minute (grey), queue
// depth (red), billed workers (green), workers.min set by the controller
// (blue steps), and RunPod's scaler alone (dashed).
func plotDay(ss []sample, st, base fakerunpod.ReplayStats) []byte {
	const w, h, left, top, right, bottom = 900.0, 360.0, 50.0, 40.0, 20.0, 50.0
	pw, ph := w-left-right, h-top-bottom
	tMax, aMax, yMax := 1.0, 1.0, 10.0
	for _, s := range ss {
		tMax, aMax = max(tMax, s.T), max(aMax, float64(s.Arrivals))
		yMax = max(yMax, float64(s.Workers), float64(s.BaselineWorkers), float64(s.Queue)/10)
	}
	yMax = math.Ceil(yMax/10) * 10
	x := func(t float64) float64 { return left + pw*t/tMax }
	y := func(v, vmax float64) float64 { return top + ph - ph*min(v, vmax)/vmax }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="18" font-size="14" font-weight="bold">%s</text>`+"\n", left,
		html.EscapeString("RunPod prod endpoint on the Azure code trace: AURAX sets workers.min, RunPod's scaler does the bursts"))
	fmt.Fprintf(&b, `<text x="%.0f" y="32" fill="#444">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf(
		"with controller: wait<=2s %.3f, p99 wait %.0fs, %.1f worker-h · RunPod scaler alone (min 2): %.3f, p99 %.0fs, %.1f worker-h",
		st.Attainment, st.P99WaitS, st.WorkerHours, base.Attainment, base.P99WaitS, base.WorkerHours)))
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, top, pw, ph)
	var area bytes.Buffer
	fmt.Fprintf(&area, "%.1f,%.1f ", x(0), y(0, 1))
	for _, s := range ss {
		fmt.Fprintf(&area, "%.1f,%.1f %.1f,%.1f ", x(s.T-60), y(float64(s.Arrivals), aMax), x(s.T), y(float64(s.Arrivals), aMax))
	}
	fmt.Fprintf(&area, "%.1f,%.1f", x(tMax), y(0, 1))
	fmt.Fprintf(&b, `<polygon points="%s" fill="#e4e4e4"/>`+"\n", area.String())
	line := func(get func(sample) float64, vmax float64, style string) {
		var l bytes.Buffer
		for i, s := range ss {
			if i > 0 {
				fmt.Fprintf(&l, "%.1f,%.1f ", x(s.T), y(get(ss[i-1]), vmax))
			}
			fmt.Fprintf(&l, "%.1f,%.1f ", x(s.T), y(get(s), vmax))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" %s/>`+"\n", l.String(), style)
	}
	line(func(s sample) float64 { return float64(s.Queue) / 10 }, yMax, `stroke="#d62728" stroke-width="1"`)
	line(func(s sample) float64 { return float64(s.BaselineWorkers) }, yMax, `stroke="#555" stroke-width="1.2" stroke-dasharray="4 3"`)
	line(func(s sample) float64 { return float64(s.Workers) }, yMax, `stroke="#2ca02c" stroke-width="1.5"`)
	line(func(s sample) float64 { return float64(s.Min) }, yMax, `stroke="#1f5fbf" stroke-width="2"`)
	for _, v := range []float64{0, yMax / 2, yMax} {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`+"\n", left-4, y(v, yMax)+4, v)
	}
	for t := 0.0; t <= tMax; t += 600 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#666">%.0f</text>`+"\n", x(t), top+ph+14, t/60)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#444">x: minutes · blue: workers.min (set by AURAX) · green: workers (billed) · dashed: workers with RunPod's scaler alone · red: queue depth ÷10 · grey: arrivals/min (max %.0f)</text>`+"\n", left, h-12, aMax)
	b.WriteString("</svg>\n")
	return b.Bytes()
}
