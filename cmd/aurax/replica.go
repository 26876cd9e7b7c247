package main

import (
	"log/slog"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/server"
	"github.com/prometheus/client_golang/prometheus"
)

// newMetrics is one replica's registry and metrics with the configured
// options; the caller closes the metrics (NVML).
func newMetrics(cfg config.Config, logger *slog.Logger) (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	return reg, metrics.New(reg, metrics.Options{SeedNames: cfg.Metrics.SeedNames, Window: cfg.Metrics.Window}, logger)
}

// buildServer assembles one replica's server: the model service over the
// configured Ollama, the RAG store and cached embedder, and the HTTP API.
// serve and runpod-worker both build it here, so a replica behaves the
// same whichever transport brings it requests. close releases the store.
func buildServer(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer, m *metrics.Metrics, scaler server.Scaler) (srv *server.Server, closeFn func(), err error) {
	svc, err := newModelService(cfg)
	if err != nil {
		return nil, nil, err
	}
	store, err := openRAGStore(cfg.RAG, logger)
	if err != nil {
		return nil, nil, err
	}
	ragMetrics := rag.NewMetrics(reg)
	opts := server.Options{Config: cfg, Models: svc, Metrics: m, Logger: logger, Version: version(),
		RAG: &server.RAG{Store: store, Embedder: ragEmbedder(svc, cfg.RAG, ragMetrics), Metrics: ragMetrics}, Scaler: scaler}
	return server.New(opts), func() { store.Close() }, nil
}
