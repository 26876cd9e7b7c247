package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/models"
	"github.com/stretchr/testify/require"
)

const chatBody = `{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":false}`

// TestErrorStatuses checks every error status of the API in both wire
// formats: OpenAI's {"error":{message,type,param,code}} on /v1 and Ollama's
// {"error":"..."} on /api.
func TestErrorStatuses(t *testing.T) {
	cases := []struct {
		name    string
		backend *stubBackend
		mod     func(*config.Config)
		path    string
		body    string
		header  []string
		status  int
		message string // substring of the message
		param   string // OpenAI param, when the field is named
		socket  bool   // over a real listener (fasthttp's own limits)
	}{
		{name: "invalid JSON", path: "/v1/chat/completions", body: `{"model":`, status: 400, message: "invalid JSON"},
		{name: "invalid JSON", path: "/api/chat", body: `{"model":`, status: 400, message: "invalid JSON"},
		{name: "empty body", path: "/v1/chat/completions", body: ``, status: 400, message: "empty"},
		{name: "wrong type", path: "/v1/chat/completions", body: `{"model":"fake","messages":"hi"}`, status: 400, message: "messages", param: "messages"},
		{name: "wrong type", path: "/api/chat", body: `{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":"yes"}`, status: 400, message: "stream"},
		{name: "no messages", path: "/v1/chat/completions", body: `{"model":"fake","messages":[]}`, status: 400, message: "messages", param: "messages"},
		{name: "bad role", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"robot","content":"hi"}]}`, status: 400, message: "role", param: "messages[0].role"},
		{name: "bad role", path: "/api/chat", body: `{"model":"fake","messages":[{"role":"robot","content":"hi"}]}`, status: 400, message: "role"},
		{name: "temperature", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"user","content":"hi"}],"temperature":7}`, status: 400, message: "temperature", param: "temperature"},
		{name: "n over server.max_n", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"user","content":"hi"}],"n":5}`, status: 400, param: "n"},
		{name: "n=0", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"user","content":"hi"}],"n":0}`, status: 400, param: "n"},
		{name: "tool_choice unknown", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"user","content":"hi"}],"tool_choice":"always"}`, status: 400, param: "tool_choice"},
		{name: "tool_choice names no tool", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, status: 400, param: "tool_choice"},
		{name: "top_logprobs without logprobs", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"user","content":"hi"}],"top_logprobs":2}`, status: 400, param: "top_logprobs"},
		{name: "top_logprobs over 20", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21}`, status: 400, param: "top_logprobs"},
		{name: "completions n>1", path: "/v1/completions", body: `{"model":"fake","prompt":"x","n":2}`, status: 400, param: "n"},
		{name: "missing model", path: "/api/generate", body: `{"prompt":"hi"}`, status: 400, message: "model"},
		{name: "embed input", path: "/v1/embeddings", body: `{"model":"fake","input":[1,2,3]}`, status: 400, param: "input"},
		{name: "embed input", path: "/api/embed", body: `{"model":"fake","input":{"a":1}}`, status: 400, message: "input"},
		{name: "remote image", path: "/v1/chat/completions", body: `{"model":"fake","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]}`, status: 400, message: "data: URL"},
		{name: "missing key", mod: withKeys, path: "/v1/chat/completions", body: chatBody, status: 401, message: "missing API key"},
		{name: "wrong key", mod: withKeys, path: "/api/chat", body: chatBody, header: []string{"Authorization", "Bearer nope"}, status: 401, message: "invalid API key"},
		{name: "unknown model", backend: &stubBackend{err: &models.ModelNotFoundError{Model: "ghost"}}, path: "/v1/chat/completions", body: chatBody, status: 404, message: `model "ghost" not found`, param: "model"},
		{name: "unknown model", backend: &stubBackend{err: &models.ModelNotFoundError{Model: "ghost"}}, path: "/api/chat", body: chatBody, status: 404, message: `model "ghost" not found`},
		{name: "unknown route", path: "/v1/nothing", body: `{}`, status: 404, message: "no such route"},
		{name: "unknown route", path: "/api/nothing", body: `{}`, status: 404, message: "no such route"},
		{name: "body too large", mod: smallBody, socket: true, path: "/v1/chat/completions", body: bigChat(), status: 413, message: "too large"},
		{name: "body too large", mod: smallBody, socket: true, path: "/api/chat", body: bigChat(), status: 413, message: "too large"},
		{name: "upstream error", backend: &stubBackend{err: &models.UpstreamError{Status: 500, Message: "llama runner crashed"}}, path: "/v1/chat/completions", body: chatBody, status: 502, message: "llama runner crashed"},
		{name: "upstream error", backend: &stubBackend{err: &models.UpstreamError{Status: 500, Message: "llama runner crashed"}}, path: "/api/generate", body: `{"model":"fake","prompt":"x","stream":false}`, status: 502, message: "llama runner crashed"},
		{name: "upstream unreachable", backend: &stubBackend{err: fmt.Errorf("%w: dial tcp: refused", models.ErrUnavailable)}, path: "/v1/embeddings", body: `{"model":"fake","input":"x"}`, status: 503, message: "unreachable"},
		{name: "upstream unreachable", backend: &stubBackend{err: fmt.Errorf("%w: dial tcp: refused", models.ErrUnavailable)}, path: "/api/embed", body: `{"model":"fake","input":"x"}`, status: 503, message: "unreachable"},
		{name: "upstream timeout", backend: &stubBackend{err: models.ErrTimeout}, path: "/v1/completions", body: `{"model":"fake","prompt":"x"}`, status: 504, message: "in time"},
		{name: "upstream timeout", backend: &stubBackend{err: models.ErrTimeout}, path: "/api/chat", body: chatBody, status: 504, message: "in time"},
	}
	for _, tc := range cases {
		t.Run(tc.path+" "+tc.name, func(t *testing.T) {
			b := tc.backend
			if b == nil {
				b = &stubBackend{}
			}
			cfg := testConfig()
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			s, _ := newTestServer(t, b, cfg)
			var resp *http.Response
			var body string
			if tc.socket {
				base, _ := serve(t, s)
				r, err := http.Post(base+tc.path, "application/json", strings.NewReader(tc.body))
				require.NoError(t, err)
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				resp, body = r, string(b)
			} else {
				resp, body = doReq(t, s, "POST", tc.path, tc.body, tc.header...)
			}
			require.Equalf(t, tc.status, resp.StatusCode, "body: %s", body)
			requireWireError(t, tc.path, body, tc.message, tc.param)
			if tc.status == 401 {
				require.Equal(t, `Bearer realm="aurax"`, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// requireWireError checks body is the error shape of path's wire format.
func requireWireError(t *testing.T, path, body, message, param string) {
	t.Helper()
	if strings.HasPrefix(path, "/api/") {
		var e struct {
			Error string `json:"error"`
		}
		require.NoErrorf(t, json.Unmarshal([]byte(body), &e), "body: %s", body)
		require.Contains(t, e.Error, message)
		return
	}
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	require.NoErrorf(t, json.Unmarshal([]byte(body), &e), "body: %s", body)
	require.Contains(t, e.Error.Message, message)
	require.NotEmpty(t, e.Error.Type)
	if param != "" {
		require.NotNil(t, e.Error.Param, "param missing in %s", body)
		require.Equal(t, param, *e.Error.Param)
	}
}

func withKeys(c *config.Config)  { c.Auth.APIKeys = []string{"k1", "k2"} }
func smallBody(c *config.Config) { c.Server.BodyLimit = 1024 }

func bigChat() string {
	return `{"model":"fake","messages":[{"role":"user","content":"` + strings.Repeat("x", 4096) + `"}]}`
}

// TestQueueFull429 fills the only slot, then asks again with no room to
// wait: 429 with Retry-After in both wire formats, at once.
func TestQueueFull429(t *testing.T) {
	for _, path := range []string{"/v1/chat/completions", "/api/chat"} {
		t.Run(path, func(t *testing.T) {
			b := &stubBackend{block: make(chan struct{})}
			cfg := testConfig()
			cfg.Ollama.Parallel, cfg.Queue.MaxWaiting = 1, 0
			s, _ := newTestServer(t, b, cfg)
			held := make(chan int)
			go func() {
				resp, _, err := rawReq(s, "POST", path, chatBody)
				if err != nil {
					held <- 0
					return
				}
				held <- resp.StatusCode
			}()
			require.Eventually(t, func() bool { return s.Pool().Stats().InFlight == 1 }, 5*time.Second, time.Millisecond)
			start := time.Now()
			resp, body := doReq(t, s, "POST", path, chatBody)
			require.Equal(t, 429, resp.StatusCode, body)
			require.Less(t, time.Since(start), 2*time.Second, "a full queue must answer at once")
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
			requireWireError(t, path, body, "retry later", "")
			close(b.block)
			require.Equal(t, 200, <-held)
		})
	}
}

// TestErrorStatusInMetrics: the HTTP metrics count the status the client got.
func TestErrorStatusInMetrics(t *testing.T) {
	s, reg := newTestServer(t, &stubBackend{}, testConfig())
	resp, _ := doReq(t, s, "POST", "/v1/chat/completions", `{"model":`)
	require.Equal(t, 400, resp.StatusCode)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "aurax_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["path"] == "/v1/chat/completions" {
				require.Equal(t, "400", labels["status_code"])
				found = true
			}
		}
	}
	require.True(t, found, "aurax_requests_total has no series for the request")
}

// TestHealthProbeListsModelsOnce: one readiness probe asks the engine for
// its models once, however many default models it checks, and readiness
// then reads what the probe found without asking again.
func TestHealthProbeListsModelsOnce(t *testing.T) {
	b := &stubBackend{}
	s, _ := newTestServer(t, b, testConfig())
	s.Health().Check(context.Background())
	require.Equal(t, int64(1), b.lists.Load())
	require.True(t, s.Health().Ready())
	hb := getHealth(t, s)
	require.Equal(t, "ok", hb.Status)
	require.Equal(t, int64(1), b.lists.Load(), "/health reads the probe's findings")
}

// TestOllamaShowName: /api/show takes the model as "model", or as the older
// "name" that Ollama still reads; neither is a 400 naming "model".
func TestOllamaShowName(t *testing.T) {
	s, _ := newTestServer(t, &stubBackend{}, testConfig())
	for _, body := range []string{`{"model":"fake"}`, `{"name":"fake"}`} {
		resp, out := doReq(t, s, "POST", "/api/show", body)
		require.Equal(t, 200, resp.StatusCode, "%s: %s", body, out)
		require.Contains(t, out, `"family":"qwen3"`, body)
	}
	resp, out := doReq(t, s, "POST", "/api/show", `{}`)
	require.Equal(t, 400, resp.StatusCode, out)
	requireWireError(t, "/api/show", out, "model: is required", "model")
}
