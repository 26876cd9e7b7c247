package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's once-per-process Date header refresher, started by
		// the first app.Test; it is not ours and never exits.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// testStart is 100 s after the process in testdata started.
var testStart = time.Unix(1700000200, 0)

// newTest returns Metrics on a fresh registry with a fake clock, no GPU and
// the given testdata tree (default "v2").
func newTest(t *testing.T, opts Options) (*Metrics, *prometheus.Registry, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: testStart}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	if opts.FSRoot == "" {
		opts.FSRoot = "testdata/v2"
	}
	if opts.openGPU == nil {
		opts.openGPU = func() (gpuBackend, error) { return nil, errors.New("nvml init: ERROR_LIBRARY_NOT_FOUND") }
	}
	reg := prometheus.NewRegistry()
	m := New(reg, opts, slog.New(slog.DiscardHandler))
	m.sys.numCPU, m.sys.pageSize = 4, 4096
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m, reg, clk
}

// testApp is a Fiber app shaped like AURAX's: metrics middleware first, then
// routes with templates, a skipped /metrics and a failing readiness probe.
func testApp(m *Metrics) *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Middleware())
	app.Get("/metrics", m.Handler())
	app.Get("/health/ready", func(c *fiber.Ctx) error { return fiber.NewError(fiber.StatusServiceUnavailable, "draining") })
	app.Get("/v1/models/:id", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"id": c.Params("id")}) })
	app.Post("/v1/chat/completions", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusOK) })
	app.Post("/api/chat", func(c *fiber.Ctx) error { return fiber.NewError(fiber.StatusTooManyRequests, "queue full") })
	app.Get("/boom", func(c *fiber.Ctx) error { return errors.New("not a *fiber.Error") })
	return app
}

func do(t *testing.T, app *fiber.App, method, path string) (int, string) {
	t.Helper()
	resp, err := app.Test(httptest.NewRequest(method, path, nil), -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// series returns the metric family name from reg, keyed by its labels
// rendered as "k=v,k=v" in label order.
func series(t *testing.T, reg prometheus.Gatherer, name string) map[string]*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]*dto.Metric{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(kv, ",")] = m
		}
	}
	return out
}

func TestHTTPMetrics(t *testing.T) {
	m, reg, _ := newTest(t, Options{})
	app := testApp(m)

	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/models/aurax-tiny", 200},
		{"GET", "/v1/models/qwen3:coder", 200},
		{"POST", "/v1/chat/completions", 200},
		{"POST", "/api/chat", 429},
		{"GET", "/boom", 500},
		{"GET", "/no/such/route", 404},
		{"GET", "/health/ready", 503}, // skipped, and its error still reaches the client
		{"GET", "/health/ready/", 503},
		{"GET", "/metrics", 200},
	} {
		code, _ := do(t, app, r.method, r.path)
		require.Equalf(t, r.want, code, "%s %s", r.method, r.path)
	}

	got := map[string]float64{}
	for k, s := range series(t, reg, "aurax_requests_total") {
		got[k] = s.GetCounter().GetValue()
	}
	require.Equal(t, map[string]float64{
		"method=GET,path=/v1/models/:id,status_code=200":        2,
		"method=POST,path=/v1/chat/completions,status_code=200": 1,
		"method=POST,path=/api/chat,status_code=429":            1,
		"method=GET,path=/boom,status_code=500":                 1,
	}, got, "404s, /metrics and /health/ready are not counted; paths are route templates")

	h := series(t, reg, "aurax_request_duration_seconds")
	require.Len(t, h, 4)
	require.EqualValues(t, 2, h["method=GET,path=/v1/models/:id,status_code=200"].GetHistogram().GetSampleCount())
	require.Contains(t, series(t, reg, "aurax_requests_in_progress_total"), "method=GET")
}

func TestExposedNames(t *testing.T) {
	m, _, _ := newTest(t, Options{ModelTypes: []string{"qwen3:coder"}})
	m.SetQueueSource(func() QueueStats { return QueueStats{Waiting: 3, InFlight: 2, Slots: 4} })
	app := testApp(m)
	do(t, app, "GET", "/v1/models/x")
	m.Arrived("qwen3:coder")
	m.ObserveQueueWait(20 * time.Millisecond)
	m.ObserveModel(ModelResult{ModelType: "qwen3:coder", HTTPStatus: 200,
		Duration: 2 * time.Second, TTFT: 300 * time.Millisecond, PromptTokens: 10, CompletionTokens: 20})
	m.ObserveOverhead(80 * time.Microsecond)

	code, body := do(t, app, "GET", "/metrics")
	require.Equal(t, 200, code)
	lines := map[string]bool{}
	for l := range strings.Lines(body) {
		lines[strings.TrimSuffix(l, "\n")] = true
	}
	for _, want := range []string{
		`aurax_requests_total{method="GET",path="/v1/models/:id",status_code="200"} 1`,
		`aurax_request_duration_seconds_bucket{method="GET",path="/v1/models/:id",status_code="200",le="+Inf"} 1`,
		`aurax_requests_in_progress_total{method="GET"} 0`, // /metrics is skipped: the scrape is not in progress
		`aurax_inprogress_requests 5`,
		`aurax_queue_depth 3`,
		`aurax_queue_in_flight 2`,
		`aurax_queue_slots 4`,
		`aurax_queue_wait_seconds_count 1`,
		`aurax_queue_rejected_total{reason="draining"} 0`,
		`aurax_queue_rejected_total{reason="queue_full"} 0`,
		`aurax_queue_rejected_total{reason="wait_timeout"} 0`,
		`aurax_model_arrivals_total{model_type="qwen3:coder"} 1`,
		`aurax_model_requests_total{model_type="qwen3:coder",status="200"} 1`,
		`aurax_model_processing_duration_seconds_bucket{model_type="qwen3:coder",le="120"} 1`,
		`aurax_model_tokens_total{kind="prompt",model_type="qwen3:coder"} 10`,
		`aurax_model_tokens_total{kind="completion",model_type="qwen3:coder"} 20`,
		`aurax_model_time_to_first_token_seconds_count{model_type="qwen3:coder"} 1`,
		`aurax_overhead_seconds_bucket{le="1e-05"} 0`,
		`aurax_overhead_seconds_bucket{le="0.0001"} 1`,
		"# TYPE process_cpu_seconds_total counter",
		"# TYPE process_resident_memory_bytes gauge",
		"# TYPE go_goroutines gauge",
	} {
		require.Truef(t, lines[want], "exposition lacks %s", want)
	}
	require.NotContains(t, body, "nvidia_gpu_", "no GPU metrics without NVML")
	require.NotContains(t, body, "fastapi_")
}

func TestSeedNames(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      Options
		want, not string
	}{
		{"default", Options{}, "aurax_requests_total", "fastapi_"},
		{"seed", Options{SeedNames: true}, "fastapi_requests_total", "aurax_requests_total"},
		{"namespace", Options{Namespace: "edge"}, "edge_requests_total", "aurax_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := newTest(t, tc.opts)
			app := testApp(m)
			do(t, app, "GET", "/v1/models/x")
			_, body := do(t, app, "GET", "/metrics")
			require.Contains(t, body, tc.want+`{method="GET",path="/v1/models/:id",status_code="200"} 1`)
			require.Contains(t, body, strings.Replace(tc.want, "requests_total", "request_duration_seconds_count", 1))
			require.NotContains(t, body, tc.not)
			if tc.opts.SeedNames {
				require.Contains(t, body, "aurax_queue_depth 0", "only the HTTP metrics take the seed names")
			}
		})
	}
}

func TestQueueGauges(t *testing.T) {
	m, reg, _ := newTest(t, Options{})
	gauge := func(name string) float64 {
		t.Helper()
		s := series(t, reg, name)
		require.Len(t, s, 1, name)
		return s[""].GetGauge().GetValue()
	}
	require.Zero(t, gauge("aurax_queue_depth"), "no source yet reads as empty")

	q := QueueStats{}
	m.SetQueueSource(func() QueueStats { return q })
	for _, tc := range []QueueStats{{Slots: 4}, {InFlight: 4, Slots: 4}, {Waiting: 7, InFlight: 4, Slots: 4}, {Waiting: 2, InFlight: 1, Slots: 8}} {
		q = tc
		require.Equal(t, float64(tc.Waiting+tc.InFlight), gauge("aurax_inprogress_requests"), "%+v", tc)
		require.Equal(t, float64(tc.Waiting), gauge("aurax_queue_depth"), "%+v", tc)
		require.Equal(t, float64(tc.InFlight), gauge("aurax_queue_in_flight"), "%+v", tc)
		require.Equal(t, float64(tc.Slots), gauge("aurax_queue_slots"), "%+v", tc)
		s := m.Signals()
		require.Equal(t, [3]int{tc.Waiting, tc.InFlight, tc.Slots}, [3]int{s.QueueDepth, s.InFlight, s.Slots})
	}
}

func TestModelMetrics(t *testing.T) {
	m, _, _ := newTest(t, Options{})
	for _, r := range []ModelResult{
		{ModelType: "a", HTTPStatus: 200, Duration: time.Second, PromptTokens: 5, CompletionTokens: 7},
		{ModelType: "a", HTTPStatus: 200, Duration: time.Second, TTFT: time.Millisecond},
		{ModelType: "a", HTTPStatus: 502, Duration: time.Second},
		{ModelType: "a", HTTPStatus: 200, Canceled: true, Duration: time.Second},
		{ModelType: "b", HTTPStatus: 429},
	} {
		m.ObserveModel(r)
	}
	m.Rejected(ReasonQueueFull)
	m.Rejected(ReasonQueueFull)
	m.Rejected("shed")

	for _, tc := range []struct {
		c      *prometheus.CounterVec
		labels []string
		want   float64
	}{
		{m.modelRequests, []string{"a", "200"}, 2},
		{m.modelRequests, []string{"a", "502"}, 1},
		{m.modelRequests, []string{"a", "499"}, 1},
		{m.modelRequests, []string{"b", "429"}, 1},
		{m.modelTokens, []string{"a", "prompt"}, 5},
		{m.modelTokens, []string{"a", "completion"}, 7},
		{m.modelTokens, []string{"b", "completion"}, 0},
		{m.rejected, []string{ReasonQueueFull}, 2},
		{m.rejected, []string{ReasonWaitTimeout}, 0},
		{m.rejected, []string{"shed"}, 1},
	} {
		require.Equalf(t, tc.want, counterValue(t, tc.c.WithLabelValues(tc.labels...)), "%v", tc.labels)
	}
	ttft := series(t, m.reg, "aurax_model_time_to_first_token_seconds")
	require.EqualValues(t, 1, ttft["model_type=a"].GetHistogram().GetSampleCount(), "TTFT only when there was one")
	require.EqualValues(t, 0, ttft["model_type=b"].GetHistogram().GetSampleCount())
}

func TestModelTypeCardinalityIsBounded(t *testing.T) {
	m, reg, _ := newTest(t, Options{})
	for i := range maxModelTypes + 50 {
		m.ObserveModel(ModelResult{ModelType: strings.Repeat("x", i+1), HTTPStatus: 200})
	}
	s := series(t, reg, "aurax_model_requests_total")
	require.Len(t, s, maxModelTypes+1)
	require.Equal(t, 50.0, s["model_type=other,status=200"].GetCounter().GetValue())
}

func TestRouteAddedAfterFirstRequestIsNotCounted(t *testing.T) {
	// Documents fiberprometheus' behaviour: it snapshots the routes once.
	m, reg, _ := newTest(t, Options{})
	app := testApp(m)
	do(t, app, "GET", "/v1/models/x")
	app.Get("/late", func(c *fiber.Ctx) error { return nil })
	code, _ := do(t, app, "GET", "/late")
	require.Equal(t, 200, code)
	require.NotContains(t, series(t, reg, "aurax_requests_total"), "method=GET,path=/late,status_code=200")
}

func TestNewOnRegistryWithRuntimeCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	m := New(reg, Options{openGPU: noGPU}, nil)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close twice")
}

func noGPU() (gpuBackend, error) { return nil, errors.New("nvml init: ERROR_LIBRARY_NOT_FOUND") }

// counterValue stands in for testutil.ToFloat64: prometheus/testutil's diff
// dependency is not in go.sum.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var pb dto.Metric
	require.NoError(t, c.Write(&pb))
	return pb.GetCounter().GetValue()
}

func TestHandlerFormats(t *testing.T) {
	for _, tc := range []struct {
		name     string
		open     bool
		accept   string
		wantType string
	}{
		{"text", false, "", "text/plain; version=0.0.4"},
		{"openmetrics off", false, "application/openmetrics-text; version=1.0.0", "text/plain; version=0.0.4"},
		{"openmetrics on", true, "application/openmetrics-text; version=1.0.0", "application/openmetrics-text; version=1.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := newTest(t, Options{OpenMetrics: tc.open})
			app := testApp(m)
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := app.Test(req, -1)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tc.wantType), resp.Header.Get("Content-Type"))
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	m, reg, _ := newTest(t, Options{Now: time.Now})
	m.SetQueueSource(func() QueueStats { return QueueStats{Waiting: 1, InFlight: 1, Slots: 2} })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				mt := string(rune('a' + (g+i)%5))
				m.Arrived(mt)
				m.ObserveQueueWait(time.Millisecond)
				m.ObserveModel(ModelResult{ModelType: mt, HTTPStatus: 200 + i%3, Duration: time.Duration(i) * time.Millisecond})
				if i%50 == 0 {
					m.Signals()
					m.GPU()
					if _, err := reg.Gather(); err != nil {
						t.Error(err) // not require: this is not the test's goroutine
					}
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 800, m.Signals().ArrivalsTotal)
	require.Equal(t, 800, m.Signals().Requests)
}
