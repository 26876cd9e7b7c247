package server

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/gofiber/fiber/v2"
)

func itoa(i int) string { return strconv.Itoa(i) }

// Health tracks whether this replica can serve: Ollama reachable and the
// default chat model present. It probes in Run; handlers read the last result.
type Health struct {
	models   *models.Service
	metrics  *metrics.Metrics
	queue    *Queue
	interval time.Duration
	log      *slog.Logger
	ragPing  func(context.Context) error // the vector store's Ping; nil: no store
	pulls    *pulls                      // ollama.pull_missing; nil: off (pull.go)

	mu        sync.RWMutex
	last      probe
	everReady atomic.Bool
}

type probe struct {
	At            time.Time
	OllamaOK      bool
	OllamaVersion string
	OllamaError   string
	LatencyMS     float64
	DefaultModel  bool
	EmbedModel    bool
	RAG           ragProbe
}

func newHealth(m *models.Service, mt *metrics.Metrics, q *Queue, interval time.Duration, log *slog.Logger) *Health {
	return &Health{models: m, metrics: mt, queue: q, interval: interval, log: log}
}

// Run probes now and then every interval (every second until first ready)
// until ctx ends.
func (h *Health) Run(ctx context.Context) {
	for {
		h.Check(ctx)
		h.pullMissing(ctx)
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

// Check probes Ollama once and records the result.
func (h *Health) Check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p := probe{At: time.Now()}
	v, err := h.models.Backend().Version(ctx)
	p.LatencyMS = float64(time.Since(p.At).Microseconds()) / 1000
	if err != nil {
		p.OllamaError = err.Error()
	} else {
		p.OllamaOK, p.OllamaVersion = true, v
		names := []string{h.models.DefaultChat()}
		if h.models.DefaultEmbed() != "" {
			names = append(names, h.models.DefaultEmbed())
		}
		has, err := h.models.Has(ctx, names...) // one listing of Ollama's models
		if err != nil {
			p.OllamaOK, p.OllamaError = false, err.Error()
		} else {
			p.DefaultModel = has[0]
			p.EmbedModel = len(has) > 1 && has[1]
		}
	}
	p.RAG = h.probeRAG(ctx)
	h.mu.Lock()
	prev := h.last
	h.last = p
	h.mu.Unlock()
	ready := p.OllamaOK && p.DefaultModel
	if ready && !h.everReady.Swap(true) {
		h.log.Info("ready", "ollama_version", p.OllamaVersion, "model", h.models.DefaultChat())
	}
	if !ready && (prev.OllamaOK != p.OllamaOK || prev.DefaultModel != p.DefaultModel || prev.At.IsZero()) {
		h.log.Warn("not ready", "ollama_ok", p.OllamaOK, "default_model", h.models.DefaultChat(), "model_present", p.DefaultModel, "err", p.OllamaError)
	}
}

// Ready reports whether the last probe found Ollama and the default model.
func (h *Health) Ready() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.last.OllamaOK && h.last.DefaultModel
}

func (h *Health) snapshot() probe {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.last
}

func (s *Server) healthRoutes(app fiber.Router) {
	app.Get("/health", s.healthz)
	app.Get("/health/live", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/health/ready", s.readyz)
	app.Get("/ping", s.ping)
}

func (s *Server) healthz(c *fiber.Ctx) error {
	p := s.health.snapshot()
	gpu := s.metrics.GPU()
	status := "ok"
	switch {
	case !p.OllamaOK || !p.DefaultModel || s.draining.Load():
		status = "down"
	case !p.EmbedModel && s.models.DefaultEmbed() != "":
		status = "degraded"
	case p.RAG.Enabled && !p.RAG.OK:
		status = "degraded"
	case s.queue.Waiting() > 0 && s.queue.Waiting() >= s.cfg.Queue.MaxWaiting:
		status = "degraded"
	}
	ollama := fiber.Map{"ok": p.OllamaOK, "url": s.cfg.Ollama.URL, "version": p.OllamaVersion, "latency_ms": p.LatencyMS, "checked_at": p.At}
	if p.OllamaError != "" {
		ollama["error"] = p.OllamaError
	}
	gpuCheck := fiber.Map{"available": gpu.Available}
	if gpu.Available {
		gpuCheck["devices"] = gpu.Devices
	} else {
		gpuCheck["reason"] = gpu.Reason
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
		"checks": fiber.Map{
			"ollama": ollama,
			"models": fiber.Map{
				"default":           s.models.DefaultChat(),
				"default_present":   p.DefaultModel,
				"embedding":         s.models.DefaultEmbed(),
				"embedding_present": p.EmbedModel,
			},
			"gpu":   gpuCheck,
			"rag":   s.ragHealth(p.RAG),
			"pull":  s.health.pullReport(),
			"queue": fiber.Map{"waiting": s.queue.Waiting(), "in_flight": s.queue.InFlight(), "slots": s.queue.Slots(), "max_waiting": s.cfg.Queue.MaxWaiting},
		},
	})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	switch {
	case s.draining.Load():
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "draining"})
	case !s.health.Ready():
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready", "reason": s.notReadyReason()})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (s *Server) notReadyReason() string {
	p := s.health.snapshot()
	switch {
	case p.At.IsZero():
		return "ollama not checked yet"
	case !p.OllamaOK:
		return "ollama unreachable: " + p.OllamaError
	case !p.DefaultModel:
		if r := s.health.pullReason(s.models.Resolve(s.models.DefaultChat(), false)); r != "" {
			return r
		}
		return "default model " + strconv.Quote(s.models.DefaultChat()) + " not present in ollama"
	}
	return ""
}

// ping has RunPod's load-balancer semantics: 204 while initializing, 200
// when ready, 503 when it was ready and is not any more, or is draining.
func (s *Server) ping(c *fiber.Ctx) error {
	switch {
	case s.draining.Load():
		return c.SendStatus(fiber.StatusServiceUnavailable)
	case s.health.Ready():
		return c.SendStatus(fiber.StatusOK)
	case !s.health.everReady.Load():
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.SendStatus(fiber.StatusServiceUnavailable)
}
