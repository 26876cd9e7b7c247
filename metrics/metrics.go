package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ansrivas/fiberprometheus/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Rejection reasons of the admission queue; their series exist from the start.
const (
	ReasonQueueFull   = "queue_full"
	ReasonWaitTimeout = "wait_timeout"
	ReasonDraining    = "draining"
)

// StatusClientClosed is the status recorded for a request whose client went
// away (nginx's and Ollama's 499).
const StatusClientClosed = 499

// otherModelType is the model_type label used once maxModelTypes distinct
// model types have been seen, so that client-chosen names cannot grow the
// series set without bound.
const (
	otherModelType = "other"
	maxModelTypes  = 100
)

// Options configures New. The zero value is usable.
type Options struct {
	// Namespace prefixes every AURAX metric; default "aurax".
	Namespace string
	// SeedNames names the HTTP metrics fastapi_requests_total,
	// fastapi_request_duration_seconds and fastapi_requests_in_progress_total,
	// as the seed's dashboards and queries expect, instead of
	// <Namespace>_requests_total and so on. Other metrics keep Namespace.
	SeedNames bool
	// Window is the trailing window of Signals' p95, error rate and request
	// rate; default 60s. It is kept in 60 slots of Window/60 (at least 1s).
	Window time.Duration
	// SkipPaths are request paths the HTTP metrics do not count; default
	// /metrics, /health/live, /health/ready, /ping. Matched like Fiber's
	// default router: case-insensitively, ignoring a trailing slash.
	SkipPaths []string
	// OpenMetrics lets Handler answer in the OpenMetrics format when the
	// scraper asks for it (needed for exemplars); default off.
	OpenMetrics bool
	// ModelTypes are model_type label values whose series are created at 0
	// up front (arrivals, tokens, model_requests_total{status="200"}).
	ModelTypes []string
	// Now is the clock; default time.Now. Tests pass a fake one.
	Now func() time.Time
	// FSRoot is where /proc and /sys are read from; default "/". Tests point
	// it at a testdata tree.
	FSRoot string

	// openGPU replaces NVML in tests; nil means the real NVML.
	openGPU func() (gpuBackend, error)
}

// QueueStats is the admission queue at one instant.
type QueueStats struct {
	Waiting  int // admitted, waiting for an inference slot
	InFlight int // holding an inference slot
	Slots    int // inference slots of this replica
	Engines  int // engines taking requests
	Starting int // engines joining (not ready yet)
}

// ModelResult describes one finished model request.
type ModelResult struct {
	ModelType        string        // the model name the client asked for (alias); label model_type
	HTTPStatus       int           // final status; >= 500 or 429 counts as an error in Signals
	Canceled         bool          // the client went away; recorded as status 499, not an error
	Duration         time.Duration // admission to last byte
	TTFT             time.Duration // time to first token; 0 if none or not streamed
	Upstream         time.Duration // time spent waiting on Ollama
	PromptTokens     int
	CompletionTokens int
}

// Metrics holds AURAX's metrics on one registry. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg    *prometheus.Registry
	opts   Options
	logger *slog.Logger
	now    func() time.Time
	start  time.Time

	fp        *fiberprometheus.FiberPrometheus
	skipPaths []string

	queueSrc atomic.Pointer[func() QueueStats]
	arrivals atomic.Uint64
	tap      atomic.Pointer[Tap] // tap.go

	queueWait prometheus.Histogram
	rejected  *prometheus.CounterVec
	rejectedC map[string]prometheus.Counter
	overhead  prometheus.Histogram

	modelRequests *prometheus.CounterVec
	modelDuration *prometheus.HistogramVec
	modelTokens   *prometheus.CounterVec
	modelTTFT     *prometheus.HistogramVec
	modelArrivals *prometheus.CounterVec

	// lookup is an immutable snapshot of (model type, status) → series,
	// replaced on a miss, so that the hot path takes no lock and writes no
	// shared memory; mu guards series and the replacement.
	lookup atomic.Pointer[map[seriesKey]seriesHit]
	mu     sync.Mutex
	series map[string]*modelSeries

	win *window
	sys *sysReader

	sysErrOnce sync.Once

	sigMu  sync.Mutex
	cpuOld cpuSample // the two most recent CPU samples; see cpuPercent
	cpuNew cpuSample

	gpu       *gpuState
	closeOnce sync.Once
	closeErr  error
}

// modelSeries caches one model type's children so that the hot path does not
// hash label values.
type modelSeries struct {
	label      string
	duration   prometheus.Observer
	ttft       prometheus.Observer
	prompt     prometheus.Counter
	completion prometheus.Counter
	arrivals   prometheus.Counter
	status     map[int]prometheus.Counter // guarded by Metrics.mu
}

type seriesKey struct {
	modelType string
	code      int
}

type seriesHit struct {
	s *modelSeries
	c prometheus.Counter
}

// Histogram buckets, in seconds.
var (
	processingBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120}
	ttftBuckets       = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 3, 5, 10, 20, 30, 60}
	queueWaitBuckets  = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}
	overheadBuckets   = []float64{
		10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
	}
)

// DefaultSkipPaths are the paths the HTTP metrics skip unless Options.SkipPaths is set.
var DefaultSkipPaths = []string{"/metrics", "/health/live", "/health/ready", "/ping"}

// New registers on reg the Go and process collectors (unless reg already has
// them), the HTTP metrics, the queue and model metrics, and the NVML GPU
// collector when NVML initialises; without NVML, GPU reports why. A nil reg
// gets a fresh registry; a nil logger discards. Like MustRegister, New
// panics when one of its own metrics is already registered on reg.
func New(reg *prometheus.Registry, opts Options, logger *slog.Logger) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "metrics")
	opts = opts.withDefaults()
	m := &Metrics{
		reg:    reg,
		opts:   opts,
		logger: logger,
		now:    opts.Now,
		start:  opts.Now(),
		series: make(map[string]*modelSeries),
		sys:    newSysReader(opts.FSRoot),
	}
	m.win = newWindow(opts.Window)
	for _, p := range opts.SkipPaths {
		m.skipPaths = append(m.skipPaths, normalizePath(p))
	}

	registerRuntime(reg)

	httpNS := opts.Namespace
	if opts.SeedNames {
		httpNS = "fastapi"
	}
	m.fp = fiberprometheus.NewWithRegistry(reg, "", httpNS, "", nil)

	m.registerModel(opts.Namespace)
	reg.MustRegister(newResources(m, opts.Namespace))

	m.rejectedC = make(map[string]prometheus.Counter, 3)
	for _, r := range []string{ReasonQueueFull, ReasonWaitTimeout, ReasonDraining} {
		m.rejectedC[r] = m.rejected.WithLabelValues(r)
	}
	for _, mt := range opts.ModelTypes {
		m.seriesFor(mt, 200)
	}

	m.gpu = openGPUState(opts.openGPU, logger)
	if m.gpu.backend != nil {
		reg.MustRegister(m.gpu.collector())
	}
	return m
}

// withDefaults fills the options left zero.
func (opts Options) withDefaults() Options {
	if opts.Namespace == "" {
		opts.Namespace = "aurax"
	}
	if opts.Window <= 0 {
		opts.Window = 60 * time.Second
	}
	if opts.SkipPaths == nil {
		opts.SkipPaths = DefaultSkipPaths
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FSRoot == "" {
		opts.FSRoot = "/"
	}
	return opts
}

// registerRuntime registers the Go and process collectors once per
// registry.
func registerRuntime(reg *prometheus.Registry) {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			if !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
				panic(fmt.Sprintf("metrics: register runtime collector: %v", err))
			}
		}
	}
}

// registerModel registers the model and queue metrics under ns.
func (m *Metrics) registerModel(ns string) {
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "queue_wait_seconds",
		Help:    "Time model requests waited in the admission queue for an inference slot.",
		Buckets: queueWaitBuckets,
	})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "queue_rejected_total",
		Help: "Model requests the admission queue turned away (429 or 503), by reason.",
	}, []string{"reason"})
	m.overhead = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "overhead_seconds",
		Help:    "Time spent in AURAX itself per model request: duration minus queue wait minus upstream time.",
		Buckets: overheadBuckets,
	})
	m.modelRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "model_requests_total",
		Help: "Finished model requests by requested model and HTTP status code (499: client went away).",
	}, []string{"model_type", "status"})
	m.modelDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Name: "model_processing_duration_seconds",
		Help:    "Model request duration from admission to the last byte.",
		Buckets: processingBuckets,
	}, []string{"model_type"})
	m.modelTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "model_tokens_total",
		Help: "Tokens processed by requested model and kind (prompt or completion).",
	}, []string{"model_type", "kind"})
	m.modelTTFT = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Name: "model_time_to_first_token_seconds",
		Help:    "Time from admission to the first streamed token.",
		Buckets: ttftBuckets,
	}, []string{"model_type"})
	m.modelArrivals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "model_arrivals_total",
		Help: "Model requests that reached admission, by requested model.",
	}, []string{"model_type"})
	m.reg.MustRegister(m.queueWait, m.rejected, m.overhead, m.modelRequests,
		m.modelDuration, m.modelTokens, m.modelTTFT, m.modelArrivals,
		&queueCollector{m: m, descs: newQueueDescs(ns)})
}

// Middleware counts HTTP requests through fiberprometheus: requests_total and
// request_duration_seconds by status_code, method and path (the route
// template), and requests_in_progress_total by method. Requests to
// Options.SkipPaths pass through untouched. Routes that match nothing (404)
// are not counted, nor are routes added after the first counted request.
// Install it before the routes. A handler error that is not a *fiber.Error
// is counted as 500 unless a middleware after this one renders it first.
func (m *Metrics) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if m.skip(c.Path()) {
			// fiberprometheus's own skip returns nil and so would swallow
			// the handler's error; skip it entirely instead.
			return c.Next()
		}
		return m.fp.Middleware(c)
	}
}

func (m *Metrics) skip(path string) bool {
	path = normalizePath(path)
	for _, p := range m.skipPaths {
		if strings.EqualFold(p, path) {
			return true
		}
	}
	return false
}

func normalizePath(p string) string {
	if n := strings.TrimRight(p, "/"); n != "" {
		return n
	}
	return "/"
}

// Handler serves the registry in the Prometheus text format (OpenMetrics when
// Options.OpenMetrics is set and the scraper asks for it). A collector that
// fails does not fail the scrape: the rest is served and the error logged.
func (m *Metrics) Handler() fiber.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slogPrintln{m.logger},
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: m.opts.OpenMetrics,
	})
	return adaptor.HTTPHandler(h)
}

type slogPrintln struct{ l *slog.Logger }

func (s slogPrintln) Println(v ...any) {
	s.l.Error("serve metrics", "err", fmt.Sprint(v...))
}

// SetQueueSource sets the function that reports the admission queue. It is
// called at every scrape and by Signals, so it must be cheap and must not
// call back into Metrics. Until it is set the queue reads as empty.
func (m *Metrics) SetQueueSource(f func() QueueStats) {
	if f == nil {
		m.queueSrc.Store(nil)
		return
	}
	m.queueSrc.Store(&f)
}

func (m *Metrics) queue() QueueStats {
	if f := m.queueSrc.Load(); f != nil {
		return (*f)()
	}
	return QueueStats{}
}

// Arrived counts a model request that reached admission, before it is
// queued, admitted or rejected.
func (m *Metrics) Arrived(modelType string) {
	m.arrivals.Add(1)
	s, _ := m.seriesFor(modelType, 0)
	s.arrivals.Inc()
}

// ObserveQueueWait records how long an admitted request waited for a slot.
func (m *Metrics) ObserveQueueWait(d time.Duration) {
	m.queueWait.Observe(d.Seconds())
	if t := m.tapped(); t != nil {
		t.ObserveQueueWait(d)
	}
}

// Rejected counts a request the admission queue turned away. It feeds only
// aurax_queue_rejected_total: the server still reports the request through
// ObserveModel (status 429 or 503) so that error rate and
// model_requests_total include it.
func (m *Metrics) Rejected(reason string) {
	if c, ok := m.rejectedC[reason]; ok {
		c.Inc()
		return
	}
	m.rejected.WithLabelValues(reason).Inc()
}

// ObserveOverhead records time spent in AURAX itself for one model request.
func (m *Metrics) ObserveOverhead(d time.Duration) {
	m.overhead.Observe(d.Seconds())
}

// ObserveModel records one finished model request: its Prometheus series,
// the Signals window and the Tap, if any. It does not allocate once the
// model type and status have been seen.
func (m *Metrics) ObserveModel(r ModelResult) {
	code := r.HTTPStatus
	if r.Canceled {
		code = StatusClientClosed
	}
	s, c := m.seriesFor(r.ModelType, code)
	c.Inc()
	s.duration.Observe(r.Duration.Seconds())
	if r.TTFT > 0 {
		s.ttft.Observe(r.TTFT.Seconds())
	}
	if r.PromptTokens > 0 {
		s.prompt.Add(float64(r.PromptTokens))
	}
	if r.CompletionTokens > 0 {
		s.completion.Add(float64(r.CompletionTokens))
	}
	failed := !r.Canceled && (code >= 500 || code == 429)
	m.win.add(m.now().Sub(m.start), r.Duration, failed)
	if t := m.tapped(); t != nil {
		t.ObserveModel(r)
	}
}

// seriesFor returns the cached series of modelType and, when code is not
// 0, its model_requests_total counter for that status, creating them on
// first use.
func (m *Metrics) seriesFor(modelType string, code int) (*modelSeries, prometheus.Counter) {
	key := seriesKey{modelType, code}
	if p := m.lookup.Load(); p != nil {
		if h, ok := (*p)[key]; ok {
			return h.s, h.c
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.series[modelType]
	if !ok {
		label := modelType
		if len(m.series) >= maxModelTypes {
			label = otherModelType
		}
		if s, ok = m.series[label]; !ok {
			s = &modelSeries{
				label:      label,
				duration:   m.modelDuration.WithLabelValues(label),
				ttft:       m.modelTTFT.WithLabelValues(label),
				prompt:     m.modelTokens.WithLabelValues(label, "prompt"),
				completion: m.modelTokens.WithLabelValues(label, "completion"),
				arrivals:   m.modelArrivals.WithLabelValues(label),
				status:     make(map[int]prometheus.Counter),
			}
			m.series[label] = s
		}
	}
	var c prometheus.Counter
	if code != 0 {
		if c, ok = s.status[code]; !ok {
			c = m.modelRequests.WithLabelValues(s.label, strconv.Itoa(code))
			s.status[code] = c
		}
	}
	if m.series[modelType] == s { // not a name folded into "other": cache it
		old := m.lookup.Load()
		next := make(map[seriesKey]seriesHit, 1+len(m.series))
		if old != nil {
			maps.Copy(next, *old)
		}
		next[key] = seriesHit{s, c}
		m.lookup.Store(&next)
	}
	return s, c
}
