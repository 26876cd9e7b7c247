package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/pool/docker"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/server"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
)

// replicaBase is what serve and runpod-worker both start from.
type replicaBase struct {
	logger  *slog.Logger
	reg     *prometheus.Registry
	m       *metrics.Metrics
	engines *pool.Pool
}

// startReplica builds the logger, the metrics on a registry of their own
// and the engine pool; closeFn releases the pool's Docker client, then the
// metrics (NVML).
func startReplica(cfg config.Config) (b replicaBase, closeFn func(), err error) {
	b.logger = newLogger(cfg.Server, os.Stderr)
	b.reg, b.m = newMetrics(cfg, b.logger)
	engines, closePool, err := newPool(cfg, b.logger, b.reg)
	if err != nil {
		b.m.Close()
		return b, nil, err
	}
	b.engines = engines
	return b, func() { closePool(); b.m.Close() }, nil
}

// newMetrics is one replica's registry and metrics with the configured
// options; the caller closes the metrics (NVML).
func newMetrics(cfg config.Config, logger *slog.Logger) (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	return reg, metrics.New(reg, metrics.Options{SeedNames: cfg.Metrics.SeedNames, Window: cfg.Metrics.Window}, logger)
}

// newPool builds the engine pool from the ollama settings: the static URLs,
// DNS and Docker discovery, and, with peers_dns, the gateways it shares the
// engines' slots with. reg may be nil (no engine metrics). close releases
// the Docker client.
func newPool(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (p *pool.Pool, closeFn func(), err error) {
	opts, err := cfg.PoolOptions()
	if err != nil {
		return nil, nil, err
	}
	opts.Logger, opts.Registerer = logger, reg
	closeFn = func() {}
	if labels := cfg.DockerDiscover(); len(labels) > 0 {
		copts := []client.Opt{client.FromEnv}
		if cfg.Compose.Host != "" {
			copts = append(copts, client.WithHost(cfg.Compose.Host))
		}
		cli, err := client.New(copts...)
		if err != nil {
			return nil, nil, fmt.Errorf("ollama.discover: docker client: %w", err)
		}
		closeFn = func() { cli.Close() }
		for _, l := range labels {
			d, err := docker.New(cli, l, docker.Options{Parallel: cfg.Ollama.Parallel, Logger: logger})
			if err != nil {
				cli.Close()
				return nil, nil, err
			}
			opts.Discoverers = append(opts.Discoverers, d)
		}
	}
	if cfg.Scaling.PeersDNS != "" {
		opts.Gateways = &scaling.LowestAddress{
			Peers: &scaling.PeersObserver{Name: cfg.Scaling.PeersDNS, Port: cfg.Scaling.PeersPort, Resolver: net.DefaultResolver},
			Self:  cfg.Scaling.SelfAddress,
		}
	}
	if p, err = pool.New(opts); err != nil {
		closeFn()
		return nil, nil, err
	}
	return p, closeFn, nil
}

// localPool is the pool for a command that talks to the engines without a
// server (aurax ingest, aurax search): it runs until stop, and returns once
// an engine takes requests (or after a few seconds, when none does).
func localPool(cfg config.Config, logger *slog.Logger) (p *pool.Pool, stop func(), err error) {
	p, closeFn, err := newPool(cfg, logger, nil)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Ready == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return p, func() { cancel(); <-done; closeFn() }, nil
}

// newModelService is the model service over the pool.
func newModelService(cfg config.Config, p *pool.Pool) *models.Service {
	return models.NewService(p, models.Config{
		DefaultChat:  cfg.Models.Default,
		DefaultEmbed: cfg.Models.Embedding,
		Aliases:      withRAGAliases(cfg.Models.Aliases, cfg.RAG.Aliases),
	})
}

// buildServer assembles one replica's server over the engine pool p: the
// model service over it, the RAG store and cached embedder, and the HTTP
// API. serve and runpod-worker both build it here, so a replica behaves
// the same whichever transport brings it requests. close releases the
// store; the server's Run runs the pool.
func buildServer(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer, m *metrics.Metrics, p *pool.Pool, scaler server.Scaler) (srv *server.Server, closeFn func(), err error) {
	svc := newModelService(cfg, p)
	store, err := openRAGStore(cfg.RAG, logger)
	if err != nil {
		return nil, nil, err
	}
	ragMetrics := rag.NewMetrics(reg)
	opts := server.Options{Config: cfg, Pool: p, Models: svc, Metrics: m, Logger: logger, Version: version(),
		RAG: &server.RAG{Store: store, Embedder: ragEmbedder(svc, cfg.RAG, ragMetrics), Metrics: ragMetrics}, Scaler: scaler}
	return server.New(opts), func() { store.Close() }, nil
}
