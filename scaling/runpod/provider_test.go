package runpod

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/fakerunpod"
	"github.com/aurax/aurax/internal/retry"
	"github.com/aurax/aurax/scaling"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "rpa_TESTKEY_0123456789abcdef"

func startEndpoint() fakerunpod.Endpoint {
	return fakerunpod.Endpoint{ID: "ep123", Name: "aurax",
		Workers: fakerunpod.Workers{Min: 1, Max: 3, IdleTimeout: 5},
		Scaling: fakerunpod.Scaling{Type: "QUEUE_DELAY", QueueDelay: 4}}
}

// newFake starts the fake API and a config aimed at it.
func newFake(t *testing.T, ep fakerunpod.Endpoint) (*fakerunpod.API, Config) {
	t.Helper()
	api := fakerunpod.New(testKey, ep)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.EndpointID, cfg.APIKey = ep.ID, testKey
	cfg.BaseURL, cfg.QueueURL = srv.URL+"/v2", srv.URL+"/v2"
	return api, cfg
}

// newProvider builds a provider whose waits are recorded, not slept.
func newProvider(t *testing.T, cfg Config, logger *slog.Logger) (*Provider, *[]time.Duration) {
	t.Helper()
	p, err := New(cfg, nil, logger)
	require.NoError(t, err)
	var waits []time.Duration
	p.c.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return p, &waits
}

func patches(api *fakerunpod.API) []string {
	var out []string
	for _, r := range api.Requests() {
		if r.Method == http.MethodPatch {
			out = append(out, r.Body)
		}
	}
	return out
}

func TestSetReplicasSetsBounds(t *testing.T) {
	tests := []struct {
		name  string
		start fakerunpod.Endpoint
		cfg   func(*Config)
		n     int
		want  []string // PATCH bodies sent
	}{
		{"floor, budget, idle timeout and scaler", startEndpoint(), func(c *Config) {
			c.IdleTimeout, c.ScalerType, c.ScalerValue = 60*time.Second, ScalerRequestCount, 8
		}, 2, []string{`{"workers":{"min":2,"max":50,"idleTimeout":60},"scaling":{"type":"REQUEST_COUNT","requestCount":8}}`}},
		{"only the floor when the rest is right", func() fakerunpod.Endpoint {
			e := startEndpoint()
			e.Workers.Max = 50
			return e
		}(), nil, 4, []string{`{"workers":{"min":4}}`}},
		{"budget restored after the platform lowered it", func() fakerunpod.Endpoint {
			e := startEndpoint()
			e.Workers.Min, e.Workers.Max = 2, 2
			return e
		}(), nil, 2, []string{`{"workers":{"max":50}}`}},
		{"scale to zero", func() fakerunpod.Endpoint {
			e := startEndpoint()
			e.Workers.Max = 50
			return e
		}(), nil, 0, []string{`{"workers":{"min":0}}`}},
		{"nothing sent when nothing changes", func() fakerunpod.Endpoint {
			e := startEndpoint()
			e.Workers.Min, e.Workers.Max = 3, 50
			return e
		}(), func(c *Config) { c.ScalerType, c.ScalerValue = ScalerQueueDelay, 4 }, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, cfg := newFake(t, tt.start)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			p, _ := newProvider(t, cfg, nil)
			require.NoError(t, p.SetReplicas(t.Context(), tt.n))
			require.Equal(t, tt.want, patches(api), "PATCH bodies")
			got, err := p.Replicas(t.Context())
			require.NoError(t, err)
			require.Equal(t, tt.n, got, "Replicas() after SetReplicas(%d)", tt.n)
			require.Equal(t, 50, api.Endpoint().Workers.Max)
			// Idempotent: a second call sends nothing more.
			require.NoError(t, p.SetReplicas(t.Context(), tt.n))
			require.Len(t, patches(api), len(tt.want), "second SetReplicas(%d) sent a PATCH", tt.n)
			for _, r := range api.Requests() {
				require.Equal(t, "Bearer "+testKey, r.Auth)
				require.Less(t, r.Status, 300, "%s %s answered %d", r.Method, r.Path, r.Status)
			}
		})
	}
}

func TestSetReplicasRejectsOutOfBudget(t *testing.T) {
	api, cfg := newFake(t, startEndpoint())
	p, _ := newProvider(t, cfg, nil)
	err := p.SetReplicas(t.Context(), 51)
	require.ErrorIs(t, err, ErrOverBudget)
	require.Error(t, p.SetReplicas(t.Context(), -1))
	require.Zero(t, api.Count(""), "requests sent for an invalid count")
}

// TestErrorClasses: SetReplicas tries once and classifies what failed;
// under the controller's one loop (retry.Policy, as apply runs it) a 429
// waits what it asks, 5xx are retried a bounded number of times, a 4xx is
// not, and a PATCH applied before its 504 is not sent again.
func TestErrorClasses(t *testing.T) {
	retryAfter := http.Header{"Retry-After": {"2"}}
	tests := []struct {
		name      string
		fails     []fakerunpod.Failure
		terminal  bool          // the first try's error
		after     time.Duration // the wait the first try's error asks for
		wantErr   int           // status of the loop's final *APIError, 0: success
		wantCalls int           // PATCH requests in the loop
		wantWaits []time.Duration
	}{
		{"429 waits Retry-After", []fakerunpod.Failure{{Method: "PATCH", Status: 429, Header: retryAfter}}, false, 2 * time.Second, 0, 2, []time.Duration{2 * time.Second}},
		{"429 waits the rate-limit reset", []fakerunpod.Failure{{Method: "PATCH", Status: 429, Header: http.Header{"X-Ratelimit-Reset": {"0.02"}}}}, false, 20 * time.Millisecond, 0, 2, []time.Duration{20 * time.Millisecond}},
		{"5xx retried with backoff", []fakerunpod.Failure{{Method: "PATCH", Status: 502}, {Method: "PATCH", Status: 503}}, false, 0, 0, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"5xx retries are bounded", []fakerunpod.Failure{{Method: "PATCH", Status: 500}, {Method: "PATCH", Status: 500}, {Method: "PATCH", Status: 500}, {Method: "PATCH", Status: 500}, {Method: "PATCH", Status: 500}}, false, 0, 500, 4, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"applied then 504 is not applied twice", []fakerunpod.Failure{{Method: "PATCH", Status: 504, Applied: true}}, false, 0, 0, 1, []time.Duration{time.Second}},
		{"4xx terminal, not retried", []fakerunpod.Failure{{Method: "PATCH", Status: 400, Body: `{"error":"workers.max above quota"}`}}, true, 0, 400, 1, nil},
		{"403 terminal, not retried", []fakerunpod.Failure{{Method: "PATCH", Status: 403}}, true, 0, 403, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, cfg := newFake(t, startEndpoint())
			api.Fail(tt.fails...)
			p, _ := newProvider(t, cfg, nil)
			first := p.SetReplicas(t.Context(), 2)
			require.Error(t, first)
			require.Equal(t, tt.terminal, retry.IsTerminal(first), "IsTerminal(%v)", first)
			w, _ := retry.WaitOf(first)
			require.Equal(t, tt.after, w, "WaitOf(%v)", first)

			api, cfg = newFake(t, startEndpoint())
			api.Fail(tt.fails...)
			p, _ = newProvider(t, cfg, nil)
			var waits []time.Duration
			loop := retry.Policy{Attempts: 4, Backoff: retry.Backoff{Initial: time.Second, Max: time.Minute, Rand: func() float64 { return 0.5 }},
				Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
			err := loop.Do(t.Context(), func(ctx context.Context) error { return p.SetReplicas(ctx, 2) })
			if tt.wantErr == 0 {
				require.NoError(t, err)
				require.Equal(t, 2, api.Endpoint().Workers.Min)
			} else {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, tt.wantErr, ae.Status)
				require.Equal(t, 1, api.Endpoint().Workers.Min, "bounds changed by a failed PATCH")
			}
			require.Equal(t, tt.wantCalls, api.Count(http.MethodPatch), "PATCH requests")
			require.Equal(t, tt.wantWaits, waits, "waits between tries")
		})
	}
}

func TestWrongKeyIsReportedNotRetried(t *testing.T) {
	api, cfg := newFake(t, startEndpoint())
	cfg.APIKey = "rpa_WRONG"
	p, waits := newProvider(t, cfg, nil)
	_, err := p.Replicas(t.Context())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusUnauthorized, ae.Status)
	require.Equal(t, 1, api.Count(""))
	require.Empty(t, *waits)
}

func TestOverBudgetIsTerminal(t *testing.T) {
	_, cfg := newFake(t, startEndpoint())
	p, _ := newProvider(t, cfg, nil)
	err := p.SetReplicas(t.Context(), 51)
	require.ErrorIs(t, err, ErrOverBudget)
	require.True(t, retry.IsTerminal(err))
	require.ErrorContains(t, err, "runpod.max_workers 50")
	require.True(t, retry.IsTerminal(p.SetReplicas(t.Context(), -1)))
}

func TestRateLimitRemainingZeroDelaysNextCall(t *testing.T) {
	api := fakerunpod.New(testKey, startEndpoint())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", "3")
		api.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.EndpointID, cfg.APIKey, cfg.BaseURL, cfg.QueueURL = "ep123", testKey, srv.URL+"/v2", srv.URL+"/v2"
	p, waits := newProvider(t, cfg, nil)
	_, err := p.Replicas(t.Context())
	require.NoError(t, err)
	require.Empty(t, *waits)
	_, err = p.Replicas(t.Context())
	require.NoError(t, err)
	require.Len(t, *waits, 1)
	require.InDelta(t, 3*time.Second, (*waits)[0], float64(time.Second))
}

func TestKeyNeverInLogsOrErrors(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	api, cfg := newFake(t, startEndpoint())
	// A server that echoes the key back in its error body.
	echo := `{"error":"bad key Bearer ` + testKey + `"}`
	api.Fail(fakerunpod.Failure{Status: 503, Body: echo}, fakerunpod.Failure{Status: 429, Body: echo},
		fakerunpod.Failure{Method: "PATCH", Status: 400, Body: echo})
	p, _ := newProvider(t, cfg, logger)
	err := p.SetReplicas(t.Context(), 2)
	require.Error(t, err)
	obs, oerr := NewObserver(Config{}, nil, logger) // invalid config: the error names fields, not values
	require.Nil(t, obs)
	for _, s := range []string{logs.String(), err.Error(), oerr.Error()} {
		require.NotContains(t, s, testKey)
	}
	require.NotContains(t, logs.String(), testKey)
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.EndpointID = "abc123"
	require.NoError(t, ok.Validate())
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"no endpoint", func(c *Config) { c.EndpointID = "" }, "runpod.endpoint_id"},
		{"endpoint with a slash", func(c *Config) { c.EndpointID = "a/b" }, "runpod.endpoint_id"},
		{"bad base", func(c *Config) { c.BaseURL = "ftp://x" }, "runpod.base_url"},
		{"no budget", func(c *Config) { c.MaxWorkers = 0 }, "runpod.max_workers"},
		{"fractional idle", func(c *Config) { c.IdleTimeout = 1500 * time.Millisecond }, "runpod.idle_timeout"},
		{"unknown scaler", func(c *Config) { c.ScalerType, c.ScalerValue = "CPU", 1 }, "runpod.scaler_type"},
		{"scaler without value", func(c *Config) { c.ScalerType = ScalerQueueDelay }, "runpod.scaler_value"},
		{"no timeout", func(c *Config) { c.Timeout = 0 }, "runpod.timeout"},
	}
	for _, tt := range tests {
		c := ok
		tt.mod(&c)
		err := c.Validate()
		require.Error(t, err, tt.name)
		require.Contains(t, err.Error(), tt.field, tt.name)
	}
	_, err := New(ok, nil, nil)
	require.ErrorContains(t, err, "RUNPOD_API_KEY")
}

// TestFakeRejectsWhatRunPodRejects checks the fake itself: the provider's
// tests are only as strict as it is.
func TestFakeRejectsWhatRunPodRejects(t *testing.T) {
	api, cfg := newFake(t, startEndpoint())
	base := strings.TrimSuffix(cfg.BaseURL, "/v2")
	tests := []struct {
		name, method, path, auth, body string
		want                           int
	}{
		{"missing auth", "GET", "/v2/serverless/ep123", "", "", 401},
		{"raw key without Bearer", "GET", "/v2/serverless/ep123", testKey, "", 401},
		{"wrong method", "DELETE", "/v2/serverless/ep123", "Bearer " + testKey, "", 405},
		{"PATCH on workers", "PATCH", "/v2/serverless/ep123/workers", "Bearer " + testKey, `{}`, 405},
		{"unknown endpoint", "GET", "/v2/serverless/nope", "Bearer " + testKey, "", 404},
		{"unknown field", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"workers":{"min":1,"minimum":2}}`, 400},
		{"unknown top-level field", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"workersMin":1}`, 400},
		{"string for a number", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"workers":{"min":"1"}}`, 400},
		{"fraction for an integer", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"workers":{"max":1.5}}`, 400},
		{"min above max", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"workers":{"min":9}}`, 400},
		{"scaler value of the other type", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"scaling":{"type":"REQUEST_COUNT","queueDelay":3}}`, 400},
		{"fractional requestCount", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"scaling":{"type":"REQUEST_COUNT","requestCount":2.5}}`, 400},
		{"zero queueDelay", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"scaling":{"type":"QUEUE_DELAY","queueDelay":0}}`, 400},
		{"fractional queueDelay", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"scaling":{"type":"QUEUE_DELAY","queueDelay":2.5}}`, 200},
		{"over quota", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"workers":{"max":1000}}`, 400},
		{"valid", "PATCH", "/v2/serverless/ep123", "Bearer " + testKey, `{"workers":{"min":2,"max":10}}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tt.want, resp.StatusCode, "%s %s %s: %s", tt.method, tt.path, tt.body, b)
		})
	}
	require.Equal(t, 2, api.Endpoint().Workers.Min)
	require.Equal(t, fakerunpod.Scaling{Type: "QUEUE_DELAY", QueueDelay: 2.5}, api.Endpoint().Scaling)
}

// TestFractionalQueueDelay runs the provider on an endpoint whose
// QUEUE_DELAY scaler is 2.5 s, as RunPod's console allows: it is read, and
// replaced only when the configuration names another value.
func TestFractionalQueueDelay(t *testing.T) {
	ep := startEndpoint()
	ep.Scaling.QueueDelay = 2.5
	for _, tc := range []struct {
		name  string
		set   func(*Config)
		patch string
	}{
		{"kept without a scaler setting", func(c *Config) {}, `{"workers":{"min":2}}`},
		{"replaced by the configured one", func(c *Config) { c.ScalerType, c.ScalerValue = ScalerQueueDelay, 3 },
			`{"workers":{"min":2},"scaling":{"type":"QUEUE_DELAY","queueDelay":3}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, cfg := newFake(t, ep)
			cfg.MaxWorkers = ep.Workers.Max
			tc.set(&cfg)
			p, _ := newProvider(t, cfg, nil)
			n, err := p.Replicas(t.Context())
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.NoError(t, p.SetReplicas(t.Context(), 2))
			require.Equal(t, []string{tc.patch}, patches(api))
		})
	}
}

func TestDecodeErrorsAreNotRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"workers":{"min":"two"}}`)
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.EndpointID, cfg.APIKey, cfg.BaseURL = "ep", testKey, srv.URL
	p, waits := newProvider(t, cfg, nil)
	_, err := p.Replicas(t.Context())
	require.Error(t, err)
	require.False(t, errors.As(err, new(*APIError)))
	require.True(t, retry.IsTerminal(err), "an answer that does not decode would not decode again")
	require.Empty(t, *waits)
}

func TestValidateForScalingBounds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EndpointID, cfg.MaxWorkers = "ep", 10
	sc := scaling.DefaultConfig()
	sc.Profile, sc.Provider = scaling.ProfileProd, Name
	tests := []struct {
		max  int // scaling.max_replicas (0: the prod profile's 50)
		want string
	}{
		{10, ""},
		{4, ""},
		{11, "scaling.max_replicas 11 is above runpod.max_workers 10"},
		{0, "scaling.max_replicas 50 is above runpod.max_workers 10"},
	}
	for _, tt := range tests {
		sc.MaxReplicas = tt.max
		err := cfg.ValidateFor(sc)
		if tt.want == "" {
			require.NoError(t, err, "max_replicas %d", tt.max)
			continue
		}
		require.ErrorContains(t, err, tt.want, "max_replicas %d", tt.max)
	}
	cfg.EndpointID = ""
	require.ErrorContains(t, cfg.ValidateFor(sc), "runpod.endpoint_id", "its own settings too")
}
