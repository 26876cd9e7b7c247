package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/ui"
	"github.com/stretchr/testify/require"
)

// TestStatusPageAuth: the page and its files are public (they hold
// nothing: no key, no data); its data endpoints need an API key when keys
// are configured, and refuse in the OpenAI error shape like the rest of
// /v1.
func TestStatusPageAuth(t *testing.T) {
	keys := config.Auth{APIKeys: []string{"user-key-1"}, AdminKey: "admin-key-1", MetricsKey: "metrics-key-1"}
	cases := []struct {
		name    string
		auth    config.Auth
		path    string
		header  []string
		status  int
		message string
	}{
		{name: "page, no keys", path: "/ui/", status: 200},
		{name: "page, keys", auth: keys, path: "/ui/", status: 200},
		{name: "script, keys", auth: keys, path: "/ui/app.js", status: 200},
		{name: "redirect, keys", auth: keys, path: "/ui", status: 302},
		{name: "state, no keys", path: "/ui/api/state", status: 200},
		{name: "state, missing key", auth: keys, path: "/ui/api/state", status: 401, message: "missing API key"},
		{name: "history, wrong key", auth: keys, path: "/ui/api/history", header: []string{"Authorization", "Bearer nope"}, status: 401, message: "invalid API key"},
		{name: "history, metrics key", auth: keys, path: "/ui/api/history", header: []string{"Authorization", "Bearer metrics-key-1"}, status: 401, message: "invalid API key"},
		{name: "state, API key", auth: keys, path: "/ui/api/state", header: []string{"Authorization", "Bearer user-key-1"}, status: 200},
		{name: "state, admin key", auth: keys, path: "/ui/api/state", header: []string{"Authorization", "Bearer admin-key-1"}, status: 200},
		{name: "bad since", path: "/ui/api/history?since=soon", status: 400, message: "since"},
		{name: "unknown file", path: "/ui/secret.txt", status: 404, message: "no such route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Auth = tc.auth
			s, _ := newTestServer(t, &stubBackend{}, cfg)
			resp, body := doReq(t, s, "GET", tc.path, "", tc.header...)
			require.Equalf(t, tc.status, resp.StatusCode, "body: %s", body)
			for _, k := range []string{"user-key-1", "admin-key-1", "metrics-key-1"} {
				require.NotContains(t, body, k, "a key in the answer")
			}
			if tc.status >= 400 {
				requireWireError(t, tc.path, body, tc.message, "")
			}
			if tc.status == 401 {
				require.Equal(t, `Bearer realm="aurax"`, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestStatusPageState: the page's state is the server's: the pool's
// engines from /health (one here), the queue, the scaler, and the model
// requests the metrics tap fed to the history.
func TestStatusPageState(t *testing.T) {
	s, _ := scalingServer(t, config.Auth{AdminKey: "admin"})
	s.Health().Check(t.Context())
	resp, body := doReq(t, s, "POST", "/v1/chat/completions", chatBody)
	require.Equal(t, 200, resp.StatusCode, body)
	s.metrics.ObserveModel(metrics.ModelResult{ModelType: "fake", HTTPStatus: 429, Duration: time.Millisecond})
	s.scaler.(*scaling.Controller).Tick(t.Context())
	s.StatusPage().History().Sample()

	resp, body = doReq(t, s, "GET", "/ui/api/state", "")
	require.Equal(t, 200, resp.StatusCode, body)
	var st ui.State
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, "ok", st.Status, body)
	require.Equal(t, "test", st.Version)
	require.Len(t, st.Engines, 1)
	require.Equal(t, "0.17.4", st.Engines[0].Version)
	require.Equal(t, []string{"fake-embed:latest", "fake:latest"}, st.Engines[0].Models)
	require.Equal(t, 4, st.Engines[0].Slots)
	require.Equal(t, uint64(2), st.Traffic.Requests)
	require.Equal(t, 1, st.Queue.Rejected1m)
	require.NotNil(t, st.Scaling)
	require.Equal(t, 5, st.Scaling.Max)
	require.True(t, st.Scaling.Admin)
	require.False(t, st.RAG.Enabled)

	resp, body = doReq(t, s, "GET", "/ui/api/history", "")
	require.Equal(t, 200, resp.StatusCode, body)
	var h ui.HistoryResponse
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	require.Len(t, h.Points, 1)
	require.Equal(t, 2, h.Points[0].All.N)
	require.Equal(t, &ui.Replicas{Current: 1, Desired: 1}, h.Points[0].Replicas)
}
