package main

import (
	"log/slog"
	"testing"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/compose"
	"github.com/aurax/aurax/scaling/runpod"
	"github.com/stretchr/testify/require"
)

// TestNewProvider: each scaling.provider validates its own settings
// against the scaling bounds before anything is built, and a name that is
// no provider is refused with the list of those that are.
func TestNewProvider(t *testing.T) {
	d := providerDeps{logger: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		want string // "" : built without error
	}{
		{"none", func(c *config.Config) {}, ""},
		{"unknown", func(c *config.Config) { c.Scaling.Provider = "k8s" }, `scaling.provider: "k8s" is not compose, none, runpod`},
		{"runpod over its budget", func(c *config.Config) {
			c.Scaling.Provider, c.Scaling.Profile = runpod.Name, scaling.ProfileProd
			c.RunPod.EndpointID, c.RunPod.APIKey, c.RunPod.MaxWorkers = "ep", "key", 10
		}, "scaling.max_replicas 50 is above runpod.max_workers 10"},
		{"runpod within its budget", func(c *config.Config) {
			c.Scaling.Provider, c.Scaling.Profile, c.Scaling.MaxReplicas = runpod.Name, scaling.ProfileProd, 10
			c.RunPod.EndpointID, c.RunPod.APIKey, c.RunPod.MaxWorkers = "ep", "key", 10
		}, ""},
		{"compose over its GPUs", func(c *config.Config) {
			c.Scaling.Provider, c.Scaling.MaxReplicas, c.Compose.GPUs = compose.Name, 4, "0,1"
		}, "scaling.max_replicas 4 is above compose.gpus, which lists 2 (0,1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			tc.edit(&cfg)
			prov, closeProv, err := newProvider(cfg, d)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			defer closeProv()
			if cfg.Scaling.Provider == scaling.ProviderNone {
				require.Nil(t, prov, "none: the controller's own dry run")
			} else {
				require.NotNil(t, prov)
			}
		})
	}
}
