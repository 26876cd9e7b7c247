package server

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/gofiber/fiber/v2"
)

// Health tracks whether this replica can serve: at least one engine of the
// pool ready with the default chat model. The pool probes its engines; Run
// here probes the vector store and logs readiness as it changes.
type Health struct {
	pool     *pool.Pool
	models   *models.Service
	interval time.Duration
	log      *slog.Logger
	ragPing  func(context.Context) error // the vector store's Ping; nil: no store

	mu        sync.RWMutex
	rag       ragProbe
	wasReady  bool
	everReady atomic.Bool
}

func newHealth(p *pool.Pool, m *models.Service, interval time.Duration, log *slog.Logger) *Health {
	return &Health{pool: p, models: m, interval: interval, log: log}
}

// Run checks now and then every interval (every second until first ready)
// until ctx ends.
func (h *Health) Run(ctx context.Context) {
	for {
		h.check(ctx)
		wait := h.interval
		if !h.everReady.Load() && wait > time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Check probes every engine and the vector store once, now.
func (h *Health) Check(ctx context.Context) {
	h.pool.ProbeAll(ctx)
	h.check(ctx)
}

func (h *Health) check(ctx context.Context) {
	r := h.probeRAG(ctx)
	ready := h.Ready()
	h.mu.Lock()
	h.rag = r
	was := h.wasReady
	h.wasReady = ready
	h.mu.Unlock()
	switch {
	case ready && !h.everReady.Swap(true):
		h.log.Info("ready", "model", h.models.DefaultChat(), "engines", h.pool.Stats().Ready)
	case ready && !was:
		h.log.Info("ready again", "model", h.models.DefaultChat())
	case !ready && was:
		h.log.Warn("not ready", "reason", h.notReadyReason())
	}
}

// Ready reports whether an engine is ready with the default chat model.
func (h *Health) Ready() bool {
	return h.pool.HasReady(h.models.Resolve(h.models.DefaultChat(), false))[0]
}

func (h *Health) ragSnapshot() ragProbe {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.rag
}

// notReadyReason says why Ready is false, naming the engines' states.
func (h *Health) notReadyReason() string {
	engines := h.pool.Engines()
	model := h.models.Resolve(h.models.DefaultChat(), false)
	if len(engines) == 0 {
		return "no model engine in the pool"
	}
	var why []string
	checked := false
	for _, e := range engines {
		if !e.CheckedAt.IsZero() {
			checked = true
		}
		switch {
		case e.State == "ready" || e.State == "unknown":
			if e.CheckedAt.IsZero() {
				why = append(why, e.Name+": not checked yet")
			} else {
				why = append(why, e.Name+": default model "+strconv.Quote(model)+" not present")
			}
		default:
			why = append(why, e.Name+": "+e.State+": "+e.Reason)
		}
	}
	if !checked {
		return "ollama not checked yet"
	}
	return strings.Join(why, "; ")
}

func (s *Server) healthRoutes(app fiber.Router) {
	app.Get("/health", s.healthz)
	app.Get("/health/live", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/health/ready", s.readyz)
	app.Get("/ping", s.ping)
}

// engineSummary is what /health's ollama check and status read from the
// engines: how many are ready, the first one's version, the first reason
// one is not, the latest check, and every engine's model pulls.
type engineSummary struct {
	ready    int
	version  string
	firstErr string
	checked  time.Time
	pulls    []fiber.Map
}

func summarize(engines []pool.EngineStatus) engineSummary {
	var sum engineSummary
	for _, e := range engines {
		if e.OK {
			sum.ready++
			if sum.version == "" {
				sum.version = e.Version
			}
		} else if sum.firstErr == "" && e.Reason != "" {
			sum.firstErr = e.Name + ": " + e.Reason
		}
		if e.CheckedAt.After(sum.checked) {
			sum.checked = e.CheckedAt
		}
		for _, p := range e.Pulls {
			sum.pulls = append(sum.pulls, fiber.Map{"engine": e.Name, "model": p.Model, "status": p.Status, "percent": p.Percent,
				"completed_bytes": p.Completed, "total_bytes": p.Total, "active": p.Active, "error": p.Error,
				"started": p.Started, "finished": p.Finished, "next_try": p.NextTry})
		}
	}
	return sum
}

// healthStatus is /health's status: down when the default chat model is on
// no ready engine or the replica drains; degraded when some engine, the
// embedding model, RAG or queue room is missing.
func (s *Server) healthStatus(present []bool, sum engineSummary, engines int, r ragProbe, st pool.Stats) string {
	switch {
	case !present[0] || s.draining.Load():
		return "down"
	case sum.ready < engines:
		return "degraded" // some engines down, cooling down, starting or draining
	case !present[1] && s.models.DefaultEmbed() != "":
		return "degraded"
	case r.Enabled && !r.OK:
		return "degraded"
	case st.Waiting > 0 && st.Waiting >= s.cfg.Queue.MaxWaiting:
		return "degraded"
	}
	return "ok"
}

func (s *Server) healthz(c *fiber.Ctx) error {
	engines := s.pool.Engines()
	st := s.pool.Stats()
	r := s.health.ragSnapshot()
	present := s.pool.HasReady(s.models.Resolve(s.models.DefaultChat(), false), s.models.Resolve(s.models.DefaultEmbed(), true))
	sum := summarize(engines)
	status := s.healthStatus(present, sum, len(engines), r, st)
	ollama := fiber.Map{"ok": sum.ready > 0, "url": s.cfg.Ollama.URL, "version": sum.version, "engines": len(engines), "ready": sum.ready, "checked_at": sum.checked}
	if sum.ready == 0 && sum.firstErr != "" {
		ollama["error"] = sum.firstErr
	}
	pull := fiber.Map{"enabled": s.cfg.Ollama.PullMissing}
	if s.cfg.Ollama.PullMissing {
		if sum.pulls == nil {
			sum.pulls = []fiber.Map{}
		}
		pull["models"] = sum.pulls
	}
	code := fiber.StatusOK
	if status == "down" {
		code = fiber.StatusServiceUnavailable
	}
	return c.Status(code).JSON(fiber.Map{
		"status":   status,
		"version":  s.version,
		"uptime_s": int64(time.Since(s.started).Seconds()),
		"draining": s.draining.Load(),
		"engines":  engines,
		"checks": fiber.Map{
			"ollama": ollama,
			"models": fiber.Map{
				"default":           s.models.DefaultChat(),
				"default_present":   present[0],
				"embedding":         s.models.DefaultEmbed(),
				"embedding_present": present[1],
			},
			"gpu":   s.gpuCheck(),
			"rag":   s.ragHealth(r),
			"pull":  pull,
			"queue": fiber.Map{"waiting": st.Waiting, "in_flight": st.InFlight, "slots": st.Slots, "max_waiting": s.cfg.Queue.MaxWaiting},
		},
	})
}

// gpuCheck is /health's gpu check: the devices, or why there are none.
func (s *Server) gpuCheck() fiber.Map {
	gpu := s.metrics.GPU()
	if gpu.Available {
		return fiber.Map{"available": true, "devices": gpu.Devices}
	}
	return fiber.Map{"available": false, "reason": gpu.Reason}
}

func (s *Server) readyz(c *fiber.Ctx) error {
	switch {
	case s.draining.Load():
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "draining"})
	case !s.health.Ready():
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready", "reason": s.health.notReadyReason()})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// ping has RunPod's load-balancer semantics: 204 while initializing, 200
// when ready, 503 when it was ready and is not any more, or is draining.
func (s *Server) ping(c *fiber.Ctx) error {
	switch {
	case s.draining.Load():
		return c.SendStatus(fiber.StatusServiceUnavailable)
	case s.health.Ready():
		s.health.everReady.Store(true)
		return c.SendStatus(fiber.StatusOK)
	case !s.health.everReady.Load():
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.SendStatus(fiber.StatusServiceUnavailable)
}

// ragProbe is the last vector-store check, taken with the Ollama probe.
type ragProbe struct {
	Enabled   bool
	OK        bool
	Error     string
	LatencyMS float64
}

// ragPingTimeout bounds the store check inside a health probe.
const ragPingTimeout = 2 * time.Second

func (h *Health) probeRAG(ctx context.Context) ragProbe {
	if h.ragPing == nil {
		return ragProbe{}
	}
	ctx, cancel := context.WithTimeout(ctx, ragPingTimeout)
	defer cancel()
	start := time.Now()
	err := h.ragPing(ctx)
	p := ragProbe{Enabled: true, OK: err == nil, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		p.Error = err.Error()
	}
	return p
}

// ragHealth is the "rag" entry of /health's checks.
func (s *Server) ragHealth(p ragProbe) fiber.Map {
	if s.rag == nil {
		return fiber.Map{"enabled": false}
	}
	m := fiber.Map{"enabled": true, "ok": p.OK, "store": s.rag.cfg.Store, "latency_ms": p.LatencyMS, "on_error": s.rag.cfg.OnError}
	if p.Error != "" {
		m["error"] = p.Error
	}
	return m
}
