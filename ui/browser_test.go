package ui_test

// Browser tests: Debian's chromium, headless, driven over the DevTools
// protocol (chromedp), against AURAX in front of the real tiny-model
// Ollama (AURAX_TEST_OLLAMA), reached through a reverse proxy that serves
// it under a path prefix, as nginx's `location /aurax/ { proxy_pass
// http://aurax/; }` does. Without chromium (or the Ollama) the tests skip;
// under CI they fail (testenv.Missing). AURAX_UPDATE_SCREENSHOT=1 rewrites
// docs/img/status-page.png, the README's screenshot, at 1280×800.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/rag/embedded"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/scalingtest"
	"github.com/aurax/aurax/server"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

const (
	adminKey   = "admin-secret-7f3a"
	apiKey     = "user-secret-91bc"
	scaleRule  = "queue_depth > 10 step 1"
	screenshot = "../docs/img/status-page.png"
)

// browser is one headless chromium and what its pages logged as errors.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	log []string
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium is not installed: run `make deploy-tools` (Debian package chromium)")
	return ""
}

// newBrowser starts chromium at 1280×800; it ends with the test.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in containers
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to ctx (no timeout here: it would end the browser)
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	// Errors the pages log: console.error, uncaught exceptions, and the
	// browser's own log (a failed request, a refused script).
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.log = append(b.log, m.String()+" "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancelCtx(); cancelAlloc(); <-done })
	b.do(t, 10*time.Second, chromedp.EmulateViewport(1280, 800))
	return b
}

// do runs actions, failing t when they do not finish within d.
func (b *browser) do(t *testing.T, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...))
}

// value runs one action that returns a value.
func value[T any](t *testing.T, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// errors returns what the pages logged as errors so far.
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.log...)
}

// waitJS polls a JavaScript expression until it is true.
func (b *browser) waitJS(t *testing.T, d time.Duration, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		dump, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s: %v\npage:\n%s\nerrors: %q", expr, err, dump, b.errors())
	}
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	return value(t, b, chromedp.Text(chromedp.CSS(sel)))
}

// stack is AURAX in front of the test Ollama with a controller over the
// in-memory provider, behind a prefix-stripping proxy.
type stack struct {
	direct string // AURAX itself
	page   string // the page through the proxy: …/aurax/ui
	srv    *server.Server
	ctrl   *scaling.Controller
	prov   *scalingtest.Memory
	queue  atomic.Int64 // the queue depth the controller observes
}

// startStack starts the stack; with opts changing its configuration (more
// engines, faster probes) before it is validated.
func startStack(t *testing.T, auth config.Auth, opts ...func(*config.Config)) *stack {
	t.Helper()
	ollama := testenv.Ollama(t)
	logger := slog.New(slog.DiscardHandler)
	cfg := config.Default()
	cfg.Ollama.URL = ollama
	cfg.Models.Default, cfg.Models.Embedding = testenv.ChatModel, testenv.EmbedModel
	cfg.Auth = auth
	cfg.Server.DrainTimeout = 5 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	require.NoError(t, cfg.Validate())

	m := metrics.New(prometheus.NewRegistry(), metrics.Options{}, logger)
	t.Cleanup(func() { m.Close() })
	po, err := cfg.PoolOptions()
	require.NoError(t, err)
	engines, err := pool.New(po)
	require.NoError(t, err)
	svc := models.NewService(engines, models.Config{DefaultChat: cfg.Models.Default, DefaultEmbed: cfg.Models.Embedding})
	store, err := embedded.Open(filepath.Join(t.TempDir(), "rag.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })

	st := &stack{prov: scalingtest.NewMemory(1)}
	sc := scaling.DefaultConfig()
	sc.Policy, sc.Provider, sc.MinReplicas, sc.MaxReplicas = scaling.PolicyThresholds, "memory", 1, 4
	sc.Thresholds.Up = []string{scaleRule}
	sc.Thresholds.Down = []string{"queue_depth < 1 for 10m step -1"}
	obs, err := scaling.NewObserver(sc, func() metrics.Signals {
		return metrics.Signals{Time: time.Now(), QueueDepth: int(st.queue.Load()), Slots: 1}
	}, nil)
	require.NoError(t, err)
	st.ctrl, err = scaling.NewController(sc, obs, st.prov, prometheus.NewRegistry(), logger)
	require.NoError(t, err)
	st.ctrl.Tick(t.Context()) // the first decision: hold at 1

	st.srv = server.New(server.Options{Config: cfg, Pool: engines, Models: svc, Metrics: m, Logger: logger, Version: "test", Scaler: st.ctrl,
		RAG: &server.RAG{Store: store, Embedder: rag.EmbedderFunc(svc.EmbedTexts)}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = st.srv.Run(ctx, ln, nil) }()
	go func() { defer wg.Done(); _ = st.srv.StatusPage().Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	st.direct = "http://" + ln.Addr().String()

	target, _ := url.Parse(st.direct)
	proxy := httptest.NewServer(http.StripPrefix("/aurax", httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(proxy.Close)
	st.page = proxy.URL + "/aurax/ui"

	deadline := time.Now().Add(20 * time.Second)
	for !st.srv.Health().Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("AURAX in front of %s never became ready", ollama)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return st
}

// post sends one JSON request to AURAX with key (may be empty).
func (st *stack) post(t *testing.T, path, key, body string) int {
	t.Helper()
	req, err := http.NewRequest("POST", st.direct+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// client bounds every request of the tests: the test Ollama is shared.
var client = &http.Client{Timeout: time.Minute}

// burst sends n chat requests for the tiny model, conc at a time, every
// other one streamed.
func (st *stack) burst(t *testing.T, n, conc int, key string) {
	t.Helper()
	var wg sync.WaitGroup
	var bad atomic.Int64
	sem := make(chan struct{}, conc)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"status page"}],"max_tokens":8,"stream":%v}`, testenv.ChatModel, i%2 == 0)
			req, _ := http.NewRequest("POST", st.direct+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := client.Do(req)
			if err != nil {
				bad.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	require.Zero(t, bad.Load(), "requests of the burst failed")
}

// minY is the smallest y of an SVG path's points: the highest point drawn
// (the charts' viewBox is 80 high; a series at 0 lies at y 80).
const minYJS = `(sel) => {
  const d = document.querySelector(sel).getAttribute('d') || '';
  const ys = [...d.matchAll(/[ML]([-\d.]+) ([-\d.]+)/g)].map((m) => +m[2]);
  return ys.length ? Math.min(...ys) : 999;
}`

// TestStatusPage: the page through a path prefix, in front of the real
// Ollama: loads without a console error, shows the engine and the model,
// moves its counter and chart after a burst, shows a scaling decision
// with its rule on the timeline and the replica chart, and its pause
// button pauses the controller only with the admin key.
func TestStatusPage(t *testing.T) {
	st := startStack(t, config.Auth{AdminKey: adminKey})
	code := st.post(t, "/v1/rag/collections", adminKey, `{"name":"runbook"}`)
	require.Contains(t, []int{200, 201}, code)
	code = st.post(t, "/v1/rag/collections/runbook/documents", adminKey,
		`{"documents":[{"id":"restart","text":"Restart an engine: docker restart ollama-2. Drain it first."}]}`)
	require.Contains(t, []int{200, 201}, code)
	b := newBrowser(t)

	// The page loads (the redirect to ui/ resolves under the prefix), shows
	// the engine with the model loaded once it served, and logs no error.
	b.do(t, 30*time.Second, chromedp.Navigate(st.page))
	b.waitJS(t, 15*time.Second, `document.querySelector('#engines tr.engine') !== null && document.querySelector('#conn').textContent.includes('live')`)
	loc := value(t, b, chromedp.Location())
	require.True(t, strings.HasSuffix(loc, "/aurax/ui/"), loc)
	engine := b.text(t, "#engines")
	require.Contains(t, engine, strings.TrimPrefix(testenv.Ollama(t), "http://"))
	require.Contains(t, engine, testenv.ChatModel)
	require.Contains(t, engine, "ready")
	require.Equal(t, "OK", b.text(t, "#status-text"))
	b.waitJS(t, 10*time.Second, `document.querySelector('#collections').textContent.includes('runbook')`)
	require.Contains(t, b.text(t, "#collections"), "64", "the tiny embedding model's dimension")

	b.steady(t) // no layout jump while it refreshes

	// A burst of requests moves the counter and the requests/s chart.
	total0 := b.text(t, "#req-total")
	st.burst(t, 20, 4, "")
	b.waitJS(t, 15*time.Second, fmt.Sprintf(`+document.querySelector('#req-total').textContent >= %s + 20`, total0))
	b.waitJS(t, 15*time.Second, `(`+minYJS+`)('#c-rps path.s0') < 79`)
	b.waitJS(t, 15*time.Second, `(`+minYJS+`)('#c-lat path.s1') < 80`)
	b.waitJS(t, 10*time.Second, `document.querySelector('#engines').textContent.includes('(loaded)')`)
	require.Contains(t, b.text(t, "#models"), testenv.ChatModel)
	require.Empty(t, b.errors(), "the page logged errors")

	// A decision of the controller over the in-memory provider shows on
	// the timeline with its rule, and as a marker on the replica chart.
	st.scaleUp(t)
	require.Equal(t, []int{2}, st.prov.Sets())
	b.waitJS(t, 10*time.Second, `document.querySelector('#timeline').textContent.includes(`+jsString(scaleRule)+`)`)
	require.Contains(t, b.text(t, "#timeline"), "up 1 → 2 · applied · queue: "+scaleRule)
	b.waitJS(t, 5*time.Second, `document.querySelector('#c-replicas .marker.up') !== null`)
	title := value(t, b, chromedp.AttributeValue(chromedp.CSS("#c-replicas .marker.up"), "title"))
	require.Contains(t, title.Value, scaleRule)
	b.waitJS(t, 10*time.Second, `document.querySelector('#s-replicas').textContent === '2 / 2'`)

	// Pause without the admin key: the server refuses, the page says so.
	b.do(t, 5*time.Second, chromedp.Click(chromedp.CSS("#pause")))
	b.waitJS(t, 10*time.Second, `document.querySelector('#admin-msg').textContent.includes('refused (401)')`)
	require.False(t, st.ctrl.Status().Paused)

	// With it, pause and resume reach the controller, and the manual
	// override reaches the provider.
	b.do(t, 5*time.Second, chromedp.SendKeys(chromedp.CSS("#admin-key"), adminKey), chromedp.Click(chromedp.CSS("#pause")))
	b.waitJS(t, 10*time.Second, `document.querySelector('#admin-msg').textContent.includes('Pause: done')`)
	require.True(t, st.ctrl.Status().Paused)
	b.waitJS(t, 10*time.Second, `document.querySelector('#s-paused').textContent.includes('paused')`)
	b.do(t, 5*time.Second, chromedp.SetValue(chromedp.CSS("#replicas"), "3"), chromedp.Click(chromedp.CSS("#set-replicas")))
	b.waitJS(t, 10*time.Second, `document.querySelector('#admin-msg').textContent.includes('Set 3 replicas: done')`)
	require.Equal(t, []int{2, 3}, st.prov.Sets())
	b.waitJS(t, 10*time.Second, `document.querySelector('#timeline').textContent.includes('manual: status page')`)
	b.do(t, 5*time.Second, chromedp.Click(chromedp.CSS("#resume")))
	b.waitJS(t, 10*time.Second, `document.querySelector('#admin-msg').textContent.includes('Resume: done')`)
	require.False(t, st.ctrl.Status().Paused)

	// Phone width: one column, nothing wider than the screen.
	b.do(t, 5*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.waitJS(t, 5*time.Second, `document.documentElement.scrollWidth <= 390`)
}

// TestStatusPageAsksForKey: with API keys configured the page shows
// nothing but a prompt for one, refuses a wrong one, and shows the status
// with a right one (kept in the page's memory: a reload asks again).
func TestStatusPageAsksForKey(t *testing.T) {
	st := startStack(t, config.Auth{APIKeys: []string{apiKey}, AdminKey: adminKey})
	b := newBrowser(t)
	b.do(t, 30*time.Second, chromedp.Navigate(st.page))
	b.waitJS(t, 10*time.Second, `!document.querySelector('#login').hidden && document.querySelector('#main').hidden`)
	html := value(t, b, chromedp.OuterHTML(chromedp.CSS("html")))
	require.NotContains(t, html, apiKey)
	require.NotContains(t, html, adminKey)

	b.do(t, 5*time.Second, chromedp.SendKeys(chromedp.CSS("#api-key"), "wrong"), chromedp.Click(chromedp.CSS("#login-form button")))
	b.waitJS(t, 10*time.Second, `document.querySelector('#login-msg').textContent.includes('refused')`)
	b.do(t, 5*time.Second, chromedp.SendKeys(chromedp.CSS("#api-key"), apiKey), chromedp.Click(chromedp.CSS("#login-form button")))
	b.waitJS(t, 10*time.Second, `document.querySelector('#login').hidden && document.querySelector('#engines tr.engine') !== null`)
	require.Contains(t, b.text(t, "#engines"), testenv.ChatModel)

	b.do(t, 30*time.Second, chromedp.Reload())
	b.waitJS(t, 10*time.Second, `!document.querySelector('#login').hidden`)
	for _, e := range b.errors() {
		require.Contains(t, e, "401", "the only errors are the refused requests: %s", e)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
