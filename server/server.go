package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/jsonx"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/ui"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
)

// Options are a Server's dependencies.
type Options struct {
	Config config.Config
	// Pool is the engines and the admission queue; Models runs on it (its
	// Backend is the pool). Run runs the pool.
	Pool    *pool.Pool
	Models  *models.Service
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Version string
	Scaler  Scaler // nil: no scaling API beyond /v1/scaling/signals
	RAG     *RAG   // nil: no retrieval (no /v1/rag, chat `rag` is a 400)
}

// Server is one AURAX replica's HTTP API.
type Server struct {
	cfg     config.Config
	models  *models.Service
	metrics *metrics.Metrics
	log     *slog.Logger
	access  *slog.Logger // the access log; nil when server.access_log is off
	version string
	started time.Time

	app    *fiber.App
	pool   *pool.Pool
	health *Health
	auth   *auth
	scaler Scaler
	rag    *ragService  // nil: retrieval off
	ui     *ui.Page     // the status page (ui.go)
	mgmt   *http.Client // model management calls to the engines

	// reqCtx is the parent of every upstream call; it ends when the drain
	// timeout runs out, cutting what is still running.
	reqCtx    context.Context
	cancelReq context.CancelFunc
	draining  atomic.Bool
	ids       atomic.Uint64
	idPrefix  string
	watch     watcher // the connections of requests in flight
}

// New builds the Fiber app with every route.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := opts.Config
	s := &Server{
		cfg:      cfg,
		models:   opts.Models,
		metrics:  opts.Metrics,
		log:      opts.Logger.With("component", "server"),
		version:  opts.Version,
		started:  time.Now(),
		pool:     opts.Pool,
		auth:     newAuth(cfg.Auth),
		scaler:   opts.Scaler,
		idPrefix: strconv.FormatInt(time.Now().UnixNano()%1e9, 36),
		mgmt:     newManageClient(cfg.Ollama.ConnectTimeout, cfg.Ollama.HeaderTimeout),
	}
	if cfg.Server.AccessLog {
		s.access = opts.Logger.With("component", "access")
	}
	s.reqCtx, s.cancelReq = context.WithCancel(context.Background())
	s.health = newHealth(opts.Pool, opts.Models, cfg.Ollama.HealthInterval, s.log)
	s.initRAG(opts.RAG)
	s.initUI()
	s.metrics.SetQueueSource(func() metrics.QueueStats {
		st := s.pool.Stats()
		return metrics.QueueStats{Waiting: st.Waiting, InFlight: st.InFlight, Slots: st.Slots, Engines: st.Ready, Starting: st.Starting}
	})
	s.app = fiber.New(fiber.Config{
		AppName:               "aurax",
		ErrorHandler:          s.errorHandler,
		BodyLimit:             cfg.Server.BodyLimit,
		ReadTimeout:           cfg.Server.ReadTimeout,
		IdleTimeout:           cfg.Server.IdleTimeout,
		DisableStartupMessage: true,
		ReadBufferSize:        16 << 10,
		JSONEncoder:           jsonx.Marshal, // c.JSON: the answers not streamed
		// Bodies are read by readBody (the limit, the lingering 413), or
		// streamed by the handler (uploads to /api/blobs).
		StreamRequestBody: true,
	})
	s.routes()
	return s
}

func (s *Server) routes() {
	app := s.app
	app.Use(recover.New())
	app.Use(s.requestID)
	if s.access != nil {
		app.Use(s.accessLog)
	}
	app.Use(s.metrics.Middleware())
	// Render errors here, inside the metrics middleware, so that it records
	// the status the client got (it counts any non-fiber error as 500).
	app.Use(func(c *fiber.Ctx) error {
		if err := c.Next(); err != nil {
			return s.errorHandler(c, err)
		}
		return nil
	})
	app.Use(s.readBody)

	app.Get("/metrics", s.auth.metrics, s.metrics.Handler())
	s.healthRoutes(app)
	s.ui.Routes(app.Group("/ui"), s.auth.api)

	v1 := app.Group("/v1", s.auth.api)
	v1.Post("/chat/completions", s.openAIChat)
	v1.Post("/completions", s.openAICompletions)
	v1.Post("/embeddings", s.openAIEmbeddings)
	v1.Get("/models", s.openAIModels)
	v1.Get("/models/+", s.openAIModel)
	s.scalingRoutes(v1)
	s.poolRoutes(v1)
	s.ragRoutes(v1)

	app.Get("/", s.ollamaRoot)
	app.Head("/", s.ollamaRoot)
	ol := app.Group("/api", s.auth.api)
	ol.Post("/chat", s.ollamaChat)
	ol.Post("/generate", s.ollamaGenerate)
	ol.Post("/embed", s.ollamaEmbed)
	ol.Post("/embeddings", s.ollamaEmbeddings)
	ol.Get("/tags", s.ollamaTags)
	ol.Get("/ps", s.ollamaPS)
	ol.Get("/version", s.ollamaVersion)
	ol.Post("/show", s.ollamaShow)
	s.manageRoutes(ol)
}

// App is the Fiber app, for tests (app.Test) and for mounting extra routes.
func (s *Server) App() *fiber.App { return s.app }

// Pool is the engines and the admission queue.
func (s *Server) Pool() *pool.Pool { return s.pool }

// Health is the readiness checker.
func (s *Server) Health() *Health { return s.health }

// Run serves on ln (and on healthLn when not nil, for /ping and /health
// alone), and runs the pool, until ctx ends, then drains: readiness turns
// 503, new admissions are refused, requests in flight get up to the drain
// timeout, and Run returns nil once everything it started has exited.
func (s *Server) Run(ctx context.Context, ln, healthLn net.Listener) error {
	hctx, stopHealth := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Go(func() { s.health.Run(hctx) })
	bg.Go(func() { _ = s.pool.Run(hctx) })
	defer func() { stopHealth(); bg.Wait() }()

	errc := make(chan error, 2)
	go func() { errc <- s.app.Listener(lingerListener{Listener: ln, linger: s.cfg.Server.Linger}) }()
	var hs *fiber.App
	if healthLn != nil {
		hs = fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: s.errorHandler})
		s.healthRoutes(hs)
		go func() { errc <- hs.Listener(healthLn) }()
	}
	select {
	case err := <-errc:
		s.cancelReq()
		return err
	case <-ctx.Done():
	}
	st := s.pool.Stats()
	s.log.Info("draining", "in_flight", st.InFlight, "waiting", st.Waiting, "timeout", s.cfg.Server.DrainTimeout)
	s.draining.Store(true)
	s.pool.Drain()
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.DrainTimeout)
	defer cancel()
	err := s.app.ShutdownWithContext(dctx)
	s.cancelReq()
	if hs != nil {
		_ = hs.ShutdownWithTimeout(time.Second)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("drain timeout: cut requests still running", "in_flight", s.pool.Stats().InFlight)
		err = nil
	}
	s.log.Info("stopped")
	return err
}

// requestID sets X-Request-Id (kept from the client when it sent one).
func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get(fiber.HeaderXRequestID)
	if id == "" || len(id) > 128 {
		id = s.idPrefix + strconv.FormatUint(s.ids.Add(1), 36)
	}
	c.Locals(ridKey{}, id)
	c.Set(fiber.HeaderXRequestID, id)
	return c.Next()
}

type ridKey struct{}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(ridKey{}).(string)
	return id
}
