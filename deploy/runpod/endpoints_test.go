// Package runpod_test checks the RunPod deploy kit: the endpoint settings
// of every environment are what the seed says, RunPod's API (the fake that
// rejects what the real one rejects) accepts them, and the controller's
// settings validate.
package runpod_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/fakerunpod"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/runpod"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// endpoint is RunPod's PATCH body, with its field names in YAML and JSON.
type endpoint struct {
	Workers struct {
		Min         int `yaml:"min" json:"min"`
		Max         int `yaml:"max" json:"max"`
		IdleTimeout int `yaml:"idleTimeout" json:"idleTimeout"`
	} `yaml:"workers" json:"workers"`
	Scaling struct {
		Type         string `yaml:"type" json:"type"`
		QueueDelay   int    `yaml:"queueDelay" json:"queueDelay,omitempty"`
		RequestCount int    `yaml:"requestCount" json:"requestCount,omitempty"`
	} `yaml:"scaling" json:"scaling"`
}

type environment struct {
	Endpoint   endpoint             `yaml:"endpoint"`
	WorkerEnv  map[string]string    `yaml:"worker_env"`
	Controller map[string]yaml.Node `yaml:"controller"`
}

// controller decodes the environment's controller sections over the
// defaults, as config.Load does.
func (e environment) controller(t *testing.T) (scaling.Config, runpod.Config) {
	t.Helper()
	sc, rc := scaling.DefaultConfig(), runpod.DefaultConfig()
	n := e.Controller["scaling"]
	require.NoError(t, n.Decode(&sc))
	n = e.Controller["runpod"]
	require.NoError(t, n.Decode(&rc))
	return sc, rc
}

func load(t *testing.T) map[string]environment {
	t.Helper()
	b, err := os.ReadFile("endpoints.yaml")
	require.NoError(t, err)
	var f struct {
		Environments map[string]environment `yaml:"environments"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&f))
	return f.Environments
}

func TestEndpointsMatchTheSeed(t *testing.T) {
	envs := load(t)
	require.Len(t, envs, 3)
	prod := envs["prod"]
	require.Equal(t, 2, prod.Endpoint.Workers.Min)
	require.Equal(t, 50, prod.Endpoint.Workers.Max)
	require.Equal(t, 60, prod.Endpoint.Workers.IdleTimeout, "seed cooldown_period 60")
	require.Equal(t, "REQUEST_COUNT", prod.Endpoint.Scaling.Type)
	require.Equal(t, 8, prod.Endpoint.Scaling.RequestCount, "0.8 × target concurrency 10")
	require.Equal(t, "10", prod.WorkerEnv["AURAX_QUEUE_MAX_INFLIGHT"], "target concurrency 10 per worker")
	sc, rc := prod.controller(t)
	require.Equal(t, scaling.ProfileProd, sc.Profile)
	require.Equal(t, 0.8, sc.Target.ScaleUpThreshold)
	require.Equal(t, 0.3, sc.Target.ScaleDownThreshold)
	require.Equal(t, 60*time.Second, sc.UpCooldown)
	require.Equal(t, 50, rc.MaxWorkers)
	require.Equal(t, 1, envs["dev"].Endpoint.Workers.Max, "seed dev: 1 worker")
	require.Equal(t, 2, envs["staging"].Endpoint.Workers.Max, "seed staging: 2 replicas")
}

// TestEndpointsAcceptedByRunPod PATCHes each environment's settings to the
// fake API, then runs the controller's provider against them: it must find
// nothing to change at the environment's own floor.
func TestEndpointsAcceptedByRunPod(t *testing.T) {
	for name, env := range load(t) {
		t.Run(name, func(t *testing.T) {
			api := fakerunpod.New("k", fakerunpod.Endpoint{ID: "ep", Workers: fakerunpod.Workers{Max: 1, IdleTimeout: 5},
				Scaling: fakerunpod.Scaling{Type: "QUEUE_DELAY", QueueDelay: 4}})
			srv := httptest.NewServer(api)
			defer srv.Close()
			body, err := json.Marshal(env.Endpoint)
			require.NoError(t, err)
			req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/v2/serverless/ep", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer k")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode, "PATCH %s", body)

			if len(env.Controller) == 0 {
				return
			}
			sc, rc := env.controller(t)
			require.Equal(t, scaling.ModeRunPod, sc.Mode)
			require.NoError(t, sc.Validate())
			require.Equal(t, env.Endpoint.Workers.Min, sc.Resolved().MinReplicas, "controller floor = endpoint min")
			rc.EndpointID, rc.APIKey, rc.BaseURL, rc.QueueURL = "ep", "k", srv.URL+"/v2", srv.URL+"/v2"
			require.NoError(t, rc.Validate())
			p, err := runpod.New(rc, nil, nil)
			require.NoError(t, err)
			before := api.Count(http.MethodPatch)
			require.NoError(t, p.SetReplicas(t.Context(), env.Endpoint.Workers.Min))
			require.Equal(t, before, api.Count(http.MethodPatch), "controller settings disagree with the endpoint's")
		})
	}
}
