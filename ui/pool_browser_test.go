package ui_test

// Browser tests of the engines panel: two real Ollama engines behind one
// AURAX (one killed, restarted and drained while the page watches), and a
// fixture of every state the pool has.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/ui"
	"github.com/chromedp/chromedp"
	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
)

// TestStatusPagePool: AURAX over two real engines. The page shows both,
// each with its own requests after a burst; a SIGKILLed engine shows down
// with the reason the pool gives, ready again once restarted; an engine
// drained through the admin API shows draining; each model's row draws
// its traffic; a scaling decision's rule is written on the replica chart;
// and the page keeps its layout at 1280×800 and at a phone's width.
func TestStatusPagePool(t *testing.T) {
	a := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=1")
	e2 := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=1")
	st := startStack(t, config.Auth{AdminKey: adminKey}, func(c *config.Config) {
		c.Ollama.URL = a.URL + "," + e2.URL
		c.Ollama.PSInterval = 200 * time.Millisecond
	})
	b := newBrowser(t)
	b.do(t, 30*time.Second, chromedp.Navigate(st.page))
	b.waitJS(t, 15*time.Second, engineIs(a.Addr, "ready")+` && `+engineIs(e2.Addr, "ready"))
	require.Equal(t, "2 in the pool: 2 ready", b.text(t, "#engines-count"))
	require.Equal(t, "OK", b.text(t, "#status-text"))
	st.checkGPU(t, b)

	// A burst over both: each engine counts its own requests and has the
	// model loaded.
	st.burst(t, 24, 4, "")
	for _, e := range []*testenv.Engine{a, e2} {
		b.waitJS(t, 15*time.Second, fmt.Sprintf(`(() => { const r = %s; return r && +r.cells[5].textContent.split(' / ')[0] > 0 && r.textContent.includes('(loaded)'); })()`, engineRow(e.Addr)))
	}
	// Per model: the row's sparklines draw the burst.
	spark := `document.querySelector('#models tr[data-model=` + jsString(testenv.ChatModel) + `] .spark')`
	b.waitJS(t, 15*time.Second, spark+`.querySelector('path').getAttribute('d').includes('L')`)
	require.Contains(t, value(t, b, chromedp.Evaluate[string](spark+`.getAttribute('aria-label')`)), "requests/s over the last")

	// A scaling decision: the replica chart says its rule at the moment it
	// was taken, in words, not only in a tooltip.
	st.scaleUp(t)
	b.waitJS(t, 10*time.Second, `document.querySelector('#c-replicas .marker.up .rule') !== null`)
	require.Contains(t, b.text(t, "#c-replicas .marker.up"), "queue: "+scaleRule)
	b.steady(t)

	if os.Getenv("AURAX_UPDATE_SCREENSHOT") == "1" {
		updateScreenshot(t, b, st)
	}

	// SIGKILL one (runners included): down, with the probe's reason, and
	// the page degraded saying which engine and why.
	e2.Kill()
	b.waitJS(t, 20*time.Second, engineIs(e2.Addr, "down"))
	row := b.engineText(t, e2.Addr)
	require.Contains(t, row, "✖ down")
	require.Contains(t, row, "connection refused")
	require.Equal(t, "DEGRADED", b.text(t, "#status-text"))
	require.Contains(t, b.text(t, "#reasons"), "engine "+e2.Addr+" down: probe failed")

	// Restarted, it is probed back in.
	e2.Restart()
	b.waitJS(t, 40*time.Second, engineIs(e2.Addr, "ready"))
	b.waitJS(t, 10*time.Second, `document.querySelector('#status-text').textContent === 'OK'`)

	// Drained through the admin API (refused without the admin key).
	drain := "/v1/pool/engines/" + url.PathEscape(a.Addr) + "/drain"
	require.Equal(t, 401, st.post(t, drain, "", `{}`))
	require.Equal(t, 200, st.post(t, drain, adminKey, `{}`))
	b.waitJS(t, 10*time.Second, engineIs(a.Addr, "draining"))
	row = b.engineText(t, a.Addr)
	require.Contains(t, row, "⇣ draining")
	require.Contains(t, row, "no new requests")
	require.Contains(t, row, "scaled down")
	require.Equal(t, "2 in the pool: 1 ready, 1 draining", b.text(t, "#engines-count"))
	require.Empty(t, b.errors(), "the page logged errors")

	// A phone's width: one column, nothing wider than the screen, no jump.
	b.do(t, 5*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.waitJS(t, 5*time.Second, `document.documentElement.scrollWidth <= 390`)
	b.steady(t)
}

// checkGPU: the GPU panel shows what NVML reads here: a row per GPU, or
// "No GPU: " and NVML's reason (the test machines have no GPU, so the
// real "no library" path runs).
func (st *stack) checkGPU(t *testing.T, b *browser) {
	t.Helper()
	resp, err := client.Get(st.direct + "/health")
	require.NoError(t, err)
	defer resp.Body.Close()
	var h struct {
		Checks struct {
			GPU metrics.GPUStatus `json:"gpu"`
		} `json:"checks"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	g := h.Checks.GPU
	if !g.Available {
		require.NotEmpty(t, g.Reason)
		require.Equal(t, "No GPU: "+g.Reason, b.text(t, "#gpu-msg"))
		return
	}
	b.waitJS(t, 10*time.Second, fmt.Sprintf(`document.querySelectorAll('#gpus tr').length === %d`, len(g.Devices)))
	for _, d := range g.Devices {
		require.Contains(t, b.text(t, "#gpus"), d.Name)
	}
}

// engineSel selects the engines panel's row of the engine named name.
func engineSel(name string) string { return `#engines tr[data-engine="` + name + `"]` }

// engineText is what the page says of the engine named name: its row and
// the row below saying why, if any.
func (b *browser) engineText(t *testing.T, name string) string {
	t.Helper()
	return value(t, b, chromedp.Evaluate[string](`[...document.querySelectorAll(`+
		jsString(engineSel(name)+`, #engines tr[data-why="`+name+`"]`)+`)].map((r) => r.innerText).join('\n')`))
}

func engineRow(name string) string {
	return `document.querySelector(` + jsString(engineSel(name)) + `)`
}

// engineIs is a JavaScript test that the page shows the engine in state.
func engineIs(name, state string) string {
	return `(` + engineRow(name) + `|| {dataset: {}}).dataset.state === ` + jsString(state)
}

// steady checks that no box of the page moves or changes size over two
// refreshes (the header's "Updated" clock ticks once per refresh).
func (b *browser) steady(t *testing.T) {
	t.Helper()
	const boxes = `JSON.stringify([...document.querySelectorAll('.panel, .chart, .bar')].map((e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }))`
	before := value(t, b, chromedp.Evaluate[string](boxes))
	value(t, b, chromedp.Evaluate[bool](`window.auraxSeen = document.querySelector('#updated').textContent; window.auraxTicks = 0; true`))
	b.waitJS(t, 10*time.Second, `(() => { const u = document.querySelector('#updated').textContent;
	  if (u !== window.auraxSeen) { window.auraxSeen = u; window.auraxTicks++; } return window.auraxTicks >= 2; })()`)
	after := value(t, b, chromedp.Evaluate[string](boxes))
	require.Equal(t, before, after, "a box moved or changed size between refreshes")
}

// scaleUp makes the controller over the in-memory provider take one
// decision up by its rule (a rule holds from its second observation on).
func (st *stack) scaleUp(t *testing.T) {
	t.Helper()
	n := len(st.prov.Sets())
	st.queue.Store(50)
	for i := 0; i < 3 && len(st.prov.Sets()) == n; i++ {
		st.ctrl.Tick(t.Context())
	}
	st.queue.Store(0)
	require.Len(t, st.prov.Sets(), n+1, "the rule %q scaled up", scaleRule)
}

// updateScreenshot rewrites the README's screenshot: a minute of varying
// traffic and a manual override first, so that the charts have a shape
// and the replica chart a second marker, then the 1280×800 view.
func updateScreenshot(t *testing.T, b *browser, st *stack) {
	t.Helper()
	require.Contains(t, []int{200, 201}, st.post(t, "/v1/rag/collections", adminKey, `{"name":"runbook"}`))
	require.Contains(t, []int{200, 201}, st.post(t, "/v1/rag/collections/runbook/documents", adminKey,
		`{"documents":[{"id":"restart","text":"Restart an engine: docker restart ollama-2. Drain it first."}]}`))
	for i := range 60 {
		st.burst(t, 2+(i%12)*(i%12)/4, 1+i%3, "")
		if i == 40 { // an operator's override: a second marker (the rule's cooldown holds another)
			require.Equal(t, 200, st.post(t, "/v1/scaling/replicas", adminKey, `{"replicas":3,"reason":"load test","ttl":"10m"}`))
		}
		time.Sleep(time.Second) // the traffic's shape is in time
	}
	b.do(t, 30*time.Second, chromedp.EmulateViewport(1280, 800), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	b.steady(t)
	png := value(t, b, chromedp.CaptureScreenshot())
	require.NoError(t, os.WriteFile(screenshot, png, 0o644))
	t.Logf("wrote %s (%d bytes)", screenshot, len(png))
}

// fixtureSource serves a /health body from testdata and nothing else.
type fixtureSource struct{ health []byte }

func (f fixtureSource) Health(context.Context) ([]byte, error) { return f.health, nil }
func (f fixtureSource) Queue() metrics.QueueStats {
	return metrics.QueueStats{Waiting: 3, InFlight: 3, Slots: 6}
}
func (f fixtureSource) Scaling() (scaling.Status, bool) { return scaling.Status{}, false }
func (f fixtureSource) Collections(context.Context) ([]rag.CollectionInfo, error) {
	return nil, ui.ErrNoRAG
}

// TestStatusPageEngines: every state of the pool's engines (a fixture of
// /health) is a row with a symbol and a word, what the state means, and
// why; starting and draining rows are marked; a gateway's share of an
// engine's slots and a pull in progress are said; the status says why.
func TestStatusPageEngines(t *testing.T) {
	health, err := os.ReadFile("testdata/health-engines.json")
	require.NoError(t, err)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	ui.New(fixtureSource{health: health}, ui.Options{}).Routes(app.Group("/ui"), func(c *fiber.Ctx) error { return c.Next() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown(); <-done })

	b := newBrowser(t)
	b.do(t, 30*time.Second, chromedp.Navigate("http://"+ln.Addr().String()+"/ui/"))
	b.waitJS(t, 15*time.Second, `document.querySelectorAll('#engines tr.engine').length === 6`)
	require.Equal(t, "DEGRADED", b.text(t, "#status-text"))
	require.Equal(t, "6 in the pool: 1 ready, 1 unknown, 1 starting, 1 draining, 1 cooldown, 1 down", b.text(t, "#engines-count"))
	for name, want := range map[string][]string{
		"127.0.0.1:11435": {"✔ ready", "serving", "aurax-tiny (loaded)", "○ aurax-tiny-embed", "1 / 1", "share of 2", "aurax-tiny: 121 ms", "12 / 0"},
		"ollama-2":        {"◌ starting", "joining: no requests yet", "pulling aurax-tiny:latest 42 %", "loading aurax-tiny:latest"},
		"ollama-3":        {"⇣ draining", "no new requests", "scale-in: draining", "last error", "context deadline exceeded", "340 / 3"},
		"ollama-4":        {"✖ down", "probed again with backoff", "connection refused", "51 / 51"},
		"ollama-5":        {"◷ cooldown", "sits out after a failed request", "failed a request: upstream: 500"},
		"10.0.0.16:11434": {"? unknown", "not probed yet; routable", "version unknown"},
	} {
		row := b.engineText(t, name)
		for _, w := range want {
			require.Contains(t, row, w, "engine %s", name)
		}
	}
	// Starting and draining rows are marked by more than colour: the
	// state's word, and a left rule of their own style.
	styles := value(t, b, chromedp.Evaluate[string](`['ollama-2', 'ollama-3', '127.0.0.1:11435'].map((n) =>
	  getComputedStyle(document.querySelector('#engines tr[data-engine="' + n + '"] td')).borderLeftStyle).join(' ')`))
	require.Equal(t, "dashed double solid", styles)
	require.Contains(t, b.text(t, "#reasons"), "engine ollama-2 starting: loading aurax-tiny:latest")
	require.Contains(t, b.text(t, "#reasons"), "engine 10.0.0.16:11434 unknown: not probed yet")
	require.Contains(t, b.text(t, "#gpus"), "NVIDIA H100")
	require.Contains(t, b.text(t, "#gpus"), "87 %")
	require.Contains(t, b.text(t, "#s-none"), "No scaling controller")
	b.steady(t)

	b.do(t, 5*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.waitJS(t, 5*time.Second, `document.documentElement.scrollWidth <= 390`)
	require.Empty(t, b.errors())
}
