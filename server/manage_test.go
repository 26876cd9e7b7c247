package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/models/testmodel"
	"github.com/aurax/aurax/pool"
	"github.com/ollama/ollama/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// privateEngine starts a real Ollama with a models directory of its own
// (empty): the management tests change models only there, never in the
// shared test models.
func privateEngine(t *testing.T) *testenv.Engine {
	t.Helper()
	return testenv.StartEngine(t, "", "OLLAMA_MODELS="+t.TempDir())
}

// poolServer serves AURAX over a real pool of the engines at urls, with
// cfg's changes; it waits for liveness only (the engines may have no model).
func poolServer(t *testing.T, urls []string, mods ...func(*config.Config)) string {
	t.Helper()
	cfg := testConfig()
	cfg.Ollama.URL = strings.Join(urls, ",")
	cfg.Ollama.PSInterval = 200 * time.Millisecond
	cfg.Models.Default, cfg.Models.Embedding = "mgmt-tiny", ""
	cfg.Models.Aliases = map[string]string{}
	for _, m := range mods {
		m(&cfg)
	}
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{Window: cfg.Metrics.Window}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { m.Close() })
	po, err := cfg.PoolOptions()
	require.NoError(t, err)
	p, err := pool.New(po)
	require.NoError(t, err)
	svc := models.NewService(p, models.Config{DefaultChat: cfg.Models.Default, Aliases: cfg.Models.Aliases})
	s := New(Options{Config: cfg, Pool: p, Models: svc, Metrics: m, Version: "test"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/health/live")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond)
	return base
}

func ollamaClient(t *testing.T, base string) *api.Client {
	u, err := url.Parse(base)
	require.NoError(t, err)
	return api.NewClient(u, &http.Client{Timeout: 2 * time.Minute})
}

// engineModels lists an engine's models by asking it directly.
func engineModels(t *testing.T, e *testenv.Engine) []string {
	t.Helper()
	var names []string
	l, err := ollamaClient(t, e.URL).List(context.Background())
	require.NoError(t, err)
	for _, m := range l.Models {
		names = append(names, m.Name)
	}
	return names
}

func head(t *testing.T, u string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, u, nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// fakeRegistry serves the shared test models' aurax-tiny (read only) as
// an OCI registry does to Ollama's pull (manifests, blobs with HEAD and
// ranges), so that a pull can succeed on machines that reach no registry.
func fakeRegistry(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AURAX_TEST_OLLAMA_MODELS")
	if dir == "" {
		testenv.Missing(t, "AURAX_TEST_OLLAMA_MODELS is not set")
	}
	manifest := filepath.Join(dir, "manifests", "registry.ollama.ai", "library", testenv.ChatModel, "latest")
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/library/"+testenv.ChatModel+"/manifests/latest", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
		http.ServeFile(w, r, manifest)
	})
	var srv *httptest.Server
	blob := func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "blobs", strings.Replace(filepath.Base(r.URL.Path), ":", "-", 1)))
	}
	mux.HandleFunc("/v2/library/"+testenv.ChatModel+"/blobs/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			// A registry sends the download elsewhere (its CDN): Ollama
			// wants a redirect to another host name.
			http.Redirect(w, r, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)+"/direct/"+filepath.Base(r.URL.Path), http.StatusTemporaryRedirect)
			return
		}
		blob(w, r)
	})
	mux.HandleFunc("/direct/", blob)
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// rawProgress posts body to path and returns the NDJSON lines.
func rawProgress(t *testing.T, base, path, body string) (int, []map[string]any) {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		lines = append(lines, m)
	}
	return resp.StatusCode, lines
}

// TestModelManagement drives AURAX over a pool of two real Ollamas with
// Ollama's own client, as Open WebUI's admin panel does: a blob upload and
// a create land on both engines, a copy and a delete apply to both, a pull
// runs on both with merged progress, and a failure names its engine. After
// each change the pool routes to (or away from) the model at once.
func TestModelManagement(t *testing.T) {
	a, b := privateEngine(t), privateEngine(t)
	base := poolServer(t, []string{a.URL, b.URL})
	client := ollamaClient(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	names := func(e *testenv.Engine) string { return strings.TrimPrefix(e.URL, "http://") }

	files, err := testmodel.Write(t.TempDir())
	require.NoError(t, err)
	data, err := os.ReadFile(files.ChatGGUF)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	t.Run("blob", func(t *testing.T) {
		require.Equal(t, http.StatusNotFound, head(t, base+"/api/blobs/"+digest))
		require.Equal(t, http.StatusBadRequest, head(t, base+"/api/blobs/sha256:nothex"))
		require.NoError(t, client.CreateBlob(ctx, digest, strings.NewReader(string(data))))
		for _, e := range []*testenv.Engine{a, b} {
			require.Equal(t, http.StatusOK, head(t, e.URL+"/api/blobs/"+digest), "on %s", e.URL)
		}
		require.Equal(t, http.StatusOK, head(t, base+"/api/blobs/"+digest))
		require.NoError(t, client.CreateBlob(ctx, digest, strings.NewReader(string(data))), "again: every engine has it")

		bad := "sha256:" + strings.Repeat("0", 64)
		err := client.CreateBlob(ctx, bad, strings.NewReader("not it"))
		var se api.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusBadRequest, se.StatusCode)
		require.Contains(t, se.ErrorMessage, "digest mismatch")
	})

	t.Run("create", func(t *testing.T) {
		var statuses []string
		err := client.Create(ctx, &api.CreateRequest{Model: "mgmt-tiny", Files: map[string]string{testenv.ChatModel + ".gguf": digest},
			Template: "{{ .Prompt }}", Parameters: map[string]any{"num_predict": 4}}, func(p api.ProgressResponse) error {
			statuses = append(statuses, p.Status)
			return nil
		})
		require.NoError(t, err)
		require.Contains(t, statuses, "writing manifest")
		require.Equal(t, "success", statuses[len(statuses)-1])
		require.Equal(t, 1, strings.Count(strings.Join(statuses, "\n"), "success"), "one success, for all engines")
		for _, e := range []*testenv.Engine{a, b} {
			require.Contains(t, engineModels(t, e), "mgmt-tiny:latest", "on %s", e.URL)
		}
		stream := false
		err = client.Generate(ctx, &api.GenerateRequest{Model: "mgmt-tiny", Prompt: "hi", Stream: &stream}, func(api.GenerateResponse) error { return nil })
		require.NoError(t, err, "routed at once")
	})

	t.Run("copy and delete", func(t *testing.T) {
		require.NoError(t, client.Copy(ctx, &api.CopyRequest{Source: "mgmt-tiny", Destination: "mgmt-copy"}))
		for _, e := range []*testenv.Engine{a, b} {
			require.Contains(t, engineModels(t, e), "mgmt-copy:latest", "on %s", e.URL)
		}
		l, err := client.List(ctx)
		require.NoError(t, err)
		require.True(t, slices.ContainsFunc(l.Models, func(m api.ListModelResponse) bool { return m.Name == "mgmt-copy:latest" }))

		err = client.Copy(ctx, &api.CopyRequest{Source: "no-such", Destination: "x"})
		var se api.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusNotFound, se.StatusCode)

		require.NoError(t, client.Delete(ctx, &api.DeleteRequest{Model: "mgmt-copy"}))
		for _, e := range []*testenv.Engine{a, b} {
			require.NotContains(t, engineModels(t, e), "mgmt-copy:latest", "on %s", e.URL)
		}
		err = client.Delete(ctx, &api.DeleteRequest{Model: "mgmt-copy"})
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusNotFound, se.StatusCode)
		require.Contains(t, se.ErrorMessage, "not found")
		err = client.Chat(ctx, &api.ChatRequest{Model: "mgmt-copy", Messages: []api.Message{{Role: "user", Content: "x"}}}, func(api.ChatResponse) error { return nil })
		require.ErrorAs(t, err, &se, "not routed to a model just deleted")
		require.Equal(t, http.StatusNotFound, se.StatusCode)
	})

	registry := fakeRegistry(t)
	pulled := registry + "/library/" + testenv.ChatModel + ":latest"
	t.Run("pull on every engine, progress merged", func(t *testing.T) {
		byDigest := map[string][]int64{}
		totals := map[string]int64{}
		var last api.ProgressResponse
		err := client.Pull(ctx, &api.PullRequest{Model: "http://" + pulled, Insecure: true}, func(p api.ProgressResponse) error {
			if p.Digest != "" {
				byDigest[p.Digest] = append(byDigest[p.Digest], p.Completed)
				totals[p.Digest] = p.Total
			}
			last = p
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, "success", last.Status)
		require.Len(t, byDigest, 4, "the model's three layers and its config")
		for d, seq := range byDigest {
			require.True(t, slices.IsSorted(seq), "%s: the merged progress never goes back: %v", d, seq)
			require.Equal(t, totals[d], seq[len(seq)-1], "%s: done once every engine has it", d)
		}
		for _, e := range []*testenv.Engine{a, b} {
			require.Contains(t, engineModels(t, e), pulled, "on %s", e.URL)
		}
		stream := false
		err = client.Generate(ctx, &api.GenerateRequest{Model: pulled, Prompt: "hi", Stream: &stream}, func(api.GenerateResponse) error { return nil })
		require.NoError(t, err)

		status, lines := rawProgress(t, base, "/api/pull", `{"model":"http://`+pulled+`","insecure":true,"stream":false}`)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, []map[string]any{{"status": "success"}}, lines)

		status, lines = rawProgress(t, base, "/api/pull", `{"model":"http://`+pulled+`","insecure":true}`)
		require.Equal(t, http.StatusOK, status)
		seen := map[string]bool{}
		for _, l := range lines[:len(lines)-1] {
			seen[l["engine"].(string)] = true
		}
		require.Equal(t, map[string]bool{names(a): true, names(b): true}, seen, "each line names its engine")
	})

	t.Run("pull failures name the engines", func(t *testing.T) {
		err := client.Pull(ctx, &api.PullRequest{Model: "no-such-model-aurax"}, func(api.ProgressResponse) error { return nil })
		require.Error(t, err, "no registry here")
		require.Contains(t, err.Error(), "engine "+names(a))
		require.Contains(t, err.Error(), "engine "+names(b))

		status, lines := rawProgress(t, base, "/api/pull", `{"model":"no-such-model-aurax","stream":false}`)
		require.Equal(t, http.StatusInternalServerError, status, "as Ollama answers a failed pull without a stream")
		require.Contains(t, lines[0]["error"], "pull model manifest")

		status, lines = rawProgress(t, base, "/api/pull", `{}`)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid model name", lines[0]["error"])

		b.Kill()
		err = client.Pull(ctx, &api.PullRequest{Model: "http://" + pulled, Insecure: true}, func(api.ProgressResponse) error { return nil })
		require.Error(t, err)
		require.Contains(t, err.Error(), "engine "+names(b)+": unreachable")
		require.Contains(t, err.Error(), "done on "+names(a))
	})

	t.Run("push", func(t *testing.T) {
		err := client.Push(ctx, &api.PushRequest{Model: "mgmt-tiny"}, func(api.ProgressResponse) error { return nil })
		require.Error(t, err, "no registry here")
		require.NotContains(t, err.Error(), "engine ", "push runs on one engine: Ollama's own message")
	})
}

// TestModelManagementAuth: with keys configured the management routes
// need the admin key (open with no key at all, for a local install).
func TestModelManagementAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*config.Config)
		header []string
		status int
	}{
		{"api key only", func(c *config.Config) { c.Auth.APIKeys = []string{"k1"}; c.Auth.AdminKey = "adm" }, []string{"Authorization", "Bearer k1"}, 401},
		{"no admin key set", withKeys, []string{"Authorization", "Bearer k1"}, 403},
		{"no key", func(c *config.Config) { c.Auth.APIKeys = []string{"k1"}; c.Auth.AdminKey = "adm" }, nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.mod(&cfg)
			s, _ := newTestServer(t, &stubBackend{}, cfg)
			for _, r := range []struct{ method, path, body string }{
				{"POST", "/api/pull", `{"model":"x"}`}, {"DELETE", "/api/delete", `{"model":"x"}`},
				{"POST", "/api/copy", `{"source":"x","destination":"y"}`}, {"POST", "/api/create", `{"model":"x","from":"y"}`},
				{"POST", "/api/push", `{"model":"x"}`}, {"POST", "/api/blobs/sha256:" + strings.Repeat("a", 64), "blob"},
			} {
				resp, body := doReq(t, s, r.method, r.path, r.body, tc.header...)
				require.Equal(t, tc.status, resp.StatusCode, "%s %s: %s", r.method, r.path, body)
				var e struct{ Error string }
				require.NoError(t, json.Unmarshal([]byte(body), &e))
				require.NotEmpty(t, e.Error, "Ollama's error shape")
			}
		})
	}
}

// TestModelManagementNoEngine: with every engine draining there is nothing
// to change: 503.
func TestModelManagementNoEngine(t *testing.T) {
	s, _ := newTestServer(t, &stubBackend{}, testConfig())
	for _, e := range s.Pool().Engines() {
		s.Pool().DrainEngine(e.Name)
	}
	resp, body := doReq(t, s, "POST", "/api/pull", `{"model":"x"}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
}

// FuzzManageBody feeds arbitrary bodies to the management decoders: a
// name and a stream flag, or a 400; never a panic.
func FuzzManageBody(f *testing.F) {
	for _, s := range []string{`{"model":"x"}`, `{"name":"x","stream":false}`, `{"model":"x","stream":"no"}`, `{"model":1}`, `[]`, `null`, ``, `{"model":"x","insecure":true,"extra":{"a":[1]}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		name, nerr := modelName([]byte(body))
		out, _, serr := streamedBody([]byte(body))
		for _, err := range []error{nerr, serr} {
			var he *Error
			if err != nil && (!errors.As(err, &he) || he.Status != 400) {
				t.Fatalf("%q: want a 400, got %v", body, err)
			}
		}
		if nerr == nil && name == "" {
			t.Fatalf("%q: no name and no error", body)
		}
		if serr == nil {
			var m map[string]json.RawMessage
			if json.Unmarshal(out, &m) != nil || string(m["stream"]) != "true" {
				t.Fatalf("%q: the engines' body must stream: %s", body, out)
			}
		}
	})
}

// FuzzProgressMerge feeds arbitrary engine lines to the progress merge: a
// layer's completed stays within its total; never a panic.
func FuzzProgressMerge(f *testing.F) {
	f.Add(0, `{"status":"pulling abc","digest":"sha256:abc","total":100,"completed":50}`)
	f.Add(1, `{"status":"success"}`)
	f.Add(1, `{"status":"verifying sha256 digest"}`)
	f.Add(0, `{"digest":"d","total":-1,"completed":9}`)
	f.Fuzz(func(t *testing.T, i int, line string) {
		m := newProgressMerge([]pool.Target{{URL: "http://a:1"}, {URL: "http://b:2"}})
		i = (i%2 + 2) % 2
		for range 2 {
			p, ok := m.add(i, []byte(line))
			if !ok {
				continue
			}
			if p.Status == "success" {
				t.Fatal("an engine's success is held back")
			}
			if p.Digest != "" && (p.Completed > p.Total || p.Completed < min(0, p.Total)) {
				t.Fatalf("%s: completed %d of %d", line, p.Completed, p.Total)
			}
		}
	})
}

// TestModelManagementSharedModels: two engines over one models directory,
// as Compose replicas of one Ollama service share its volume: a pull and a
// create run on one engine, then on the other (which finds the blobs
// there), and a delete on the first leaves the second nothing to do.
func TestModelManagementSharedModels(t *testing.T) {
	dir := t.TempDir()
	a := testenv.StartEngine(t, "", "OLLAMA_MODELS="+dir)
	b := testenv.StartEngine(t, "", "OLLAMA_MODELS="+dir)
	base := poolServer(t, []string{a.URL, b.URL})
	client := ollamaClient(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pulled := fakeRegistry(t) + "/library/" + testenv.ChatModel + ":latest"
	require.NoError(t, client.Pull(ctx, &api.PullRequest{Model: "http://" + pulled, Insecure: true}, func(api.ProgressResponse) error { return nil }))
	require.NoError(t, client.Create(ctx, &api.CreateRequest{Model: "shared-tiny", From: pulled}, func(api.ProgressResponse) error { return nil }))
	for _, e := range []*testenv.Engine{a, b} {
		require.Subset(t, engineModels(t, e), []string{pulled, "shared-tiny:latest"}, "on %s", e.URL)
	}
	stream := false
	require.NoError(t, client.Generate(ctx, &api.GenerateRequest{Model: "shared-tiny", Prompt: "hi", Stream: &stream}, func(api.GenerateResponse) error { return nil }))
	require.NoError(t, client.Delete(ctx, &api.DeleteRequest{Model: "shared-tiny"}))
	require.NoError(t, client.Delete(ctx, &api.DeleteRequest{Model: pulled}))
	for _, e := range []*testenv.Engine{a, b} {
		require.NotContains(t, engineModels(t, e), "shared-tiny:latest")
	}
}
