package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/compose"
	"github.com/aurax/aurax/scaling/runpod"
)

// providerDeps are what a provider may need beyond the configuration.
type providerDeps struct {
	logger  *slog.Logger
	metrics *metrics.Metrics
	engines *pool.Pool
}

// providerBuild makes one scaling.provider and what closes it.
type providerBuild func(cfg config.Config, d providerDeps) (scaling.Provider, func(), error)

// providers are the scaling.provider values, as Prometheus' discovery
// configs register theirs: each package names itself and validates its own
// settings (config.ValidateProvider calls them).
var providers = map[string]providerBuild{
	scaling.ProviderNone: func(config.Config, providerDeps) (scaling.Provider, func(), error) { return nil, func() {}, nil },
	compose.Name:         newCompose,
	runpod.Name:          newRunPod,
}

// newProvider validates and builds the configured provider. A provider that
// cannot reach its platform (no Docker socket, say) leaves the controller in
// dry run with an error in the log, rather than stopping a replica that can
// still serve; a setting that is wrong stops serve.
func newProvider(cfg config.Config, d providerDeps) (scaling.Provider, func(), error) {
	build, ok := providers[cfg.Scaling.Provider]
	if !ok {
		return nil, nil, fmt.Errorf("scaling.provider: %q is not %s", cfg.Scaling.Provider,
			strings.Join(slices.Sorted(maps.Keys(providers)), ", "))
	}
	if err := cfg.ValidateProvider(); err != nil { // config.Load has checked; a config built in code has not
		return nil, nil, err
	}
	return build(cfg, d)
}

func newCompose(cfg config.Config, d providerDeps) (scaling.Provider, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := compose.New(ctx, cfg.Compose, compose.Options{Logger: d.logger,
		Drainer:     gatewayDrainer(cfg, d.engines, d.logger),
		VisibleGPUs: func() []string { return gpuIDs(d.metrics.GPU()) }})
	if err != nil {
		d.logger.Error("scaling provider unavailable: decisions are logged, not applied", "provider", compose.Name, "err", err)
		why := fmt.Sprintf("provider %q unavailable, decisions are logged, not applied: %v", compose.Name, err)
		return scaling.NewDryRun(cfg.Scaling.Resolved().MinReplicas, why, d.logger), func() {}, nil
	}
	return cp, func() { cp.Close() }, nil
}

func newRunPod(cfg config.Config, d providerDeps) (scaling.Provider, func(), error) {
	rp, err := runpod.New(cfg.RunPod, &http.Client{Timeout: cfg.RunPod.Timeout}, d.logger)
	if err != nil {
		return nil, nil, err // a key or endpoint missing is a configuration error, not an outage
	}
	return rp, func() {}, nil
}

// gatewayDrainer drains an engine from this gateway's pool and, with
// peers_dns, from the other gateways' (their admin API, with the admin key).
func gatewayDrainer(cfg config.Config, engines *pool.Pool, logger *slog.Logger) *pool.GatewayDrainer {
	d := &pool.GatewayDrainer{Pool: engines, AdminKey: cfg.Auth.AdminKey, Client: &http.Client{Timeout: 5 * time.Second}, Logger: logger}
	if cfg.Scaling.PeersDNS != "" {
		peers := &scaling.LowestAddress{
			Peers: &scaling.PeersObserver{Name: cfg.Scaling.PeersDNS, Port: cfg.Scaling.PeersPort, Resolver: net.DefaultResolver},
			Self:  cfg.Scaling.SelfAddress,
		}
		d.Peers = func(ctx context.Context) ([]string, error) {
			others, err := peers.Others(ctx)
			urls := make([]string, len(others))
			for i, a := range others {
				urls[i] = "http://" + net.JoinHostPort(a, strconv.Itoa(cfg.Scaling.PeersPort))
			}
			return urls, err
		}
	}
	return d
}

// gpuIDs are the GPUs NVML sees, by index: what compose.gpus "all" means.
func gpuIDs(s metrics.GPUStatus) []string {
	var out []string
	for _, d := range s.Devices {
		out = append(out, strconv.Itoa(d.Index))
	}
	return out
}
