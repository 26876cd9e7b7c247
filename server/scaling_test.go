package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/scalingtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// scalingServer is a Server with a real controller over the in-memory
// provider, bounds 1..5, and the given keys.
func scalingServer(t *testing.T, auth config.Auth) (*Server, *scalingtest.Memory) {
	t.Helper()
	sc := scaling.DefaultConfig()
	sc.MinReplicas, sc.MaxReplicas = 1, 5
	sc.Provider = "memory"
	prov := scalingtest.NewMemory(1)
	obs, err := scaling.NewObserver(sc, func() metrics.Signals { return metrics.Signals{} }, nil)
	require.NoError(t, err)
	ctrl, err := scaling.NewController(sc, obs, prov, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	cfg := testConfig()
	cfg.Auth = auth
	s, _ := newTestServer(t, &stubBackend{}, cfg, func(o *Options) { o.Scaler = ctrl })
	return s, prov
}

func TestScalingAPI(t *testing.T) {
	s, prov := scalingServer(t, config.Auth{APIKeys: []string{"user"}, AdminKey: "admin"})

	resp, body := doReq(t, s, "GET", "/v1/scaling/signals", "")
	require.Equal(t, 200, resp.StatusCode, "peers read signals without a key: %s", body)
	var sig map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &sig))
	require.Contains(t, sig, "queue_depth")

	resp, _ = doReq(t, s, "GET", "/v1/scaling", "")
	require.Equal(t, 401, resp.StatusCode, "status needs an API key")
	resp, body = doReq(t, s, "GET", "/v1/scaling", "", "Authorization", "Bearer user")
	require.Equal(t, 200, resp.StatusCode, body)
	var st scaling.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, 5, st.Max)

	for _, tc := range []struct {
		name, key, body string
		status          int
	}{
		{"user key is not admin", "user", `{"replicas":3}`, 401},
		{"no replicas", "admin", `{"reason":"x"}`, 400},
		{"above max", "admin", `{"replicas":9}`, 400},
		{"bad ttl", "admin", `{"replicas":3,"ttl":"soon"}`, 400},
		{"applied", "admin", `{"replicas":3,"reason":"launch","ttl":"5m"}`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := doReq(t, s, "POST", "/v1/scaling/replicas", tc.body, "Authorization", "Bearer "+tc.key)
			require.Equalf(t, tc.status, resp.StatusCode, "body %s", body)
		})
	}
	n, err := prov.Replicas(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, n, "the manual override reached the provider")
	st = s.scaler.Status()
	require.NotNil(t, st.Manual)
	require.Equal(t, "launch", st.Manual.Reason)
	require.Equal(t, "manual", st.Decisions[len(st.Decisions)-1].Decision.Reason)

	resp, _ = doReq(t, s, "POST", "/v1/scaling/pause", "", "Authorization", "Bearer admin")
	require.Equal(t, 200, resp.StatusCode)
	require.True(t, s.scaler.Status().Paused)
	resp, _ = doReq(t, s, "POST", "/v1/scaling/resume", "", "Authorization", "Bearer admin")
	require.Equal(t, 200, resp.StatusCode)
	require.False(t, s.scaler.Status().Paused)
}
