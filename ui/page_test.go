package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
)

// testApp mounts a page over src at /ui; its data endpoints answer 401
// unless the request carries "Authorization: Bearer k".
func testApp(t testing.TB, src Source) *fiber.App {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	guard := func(c *fiber.Ctx) error {
		if c.Get(fiber.HeaderAuthorization) != "Bearer k" {
			return fiber.ErrUnauthorized
		}
		return c.Next()
	}
	New(src, Options{Replica: "test"}).Routes(app.Group("/ui"), guard)
	return app
}

func get(t testing.TB, app *fiber.App, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := app.Test(req, -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestPageFiles(t *testing.T) {
	app := testApp(t, &fakeSource{health: fixture(t, "health-one.json")})

	resp, _ := get(t, app, "/ui")
	require.Equal(t, 302, resp.StatusCode)
	require.Equal(t, "ui/", resp.Header.Get("Location"), "relative: works under a proxy's prefix")

	resp, body := get(t, app, "/ui/")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	require.Contains(t, body, `<script src="app.js" defer></script>`)
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	resp, _ = get(t, app, "/ui/", "If-None-Match", etag)
	require.Equal(t, 304, resp.StatusCode)

	for name, ct := range map[string]string{"app.js": "javascript", "charts.js": "javascript", "style.css": "text/css", "index.html": "text/html"} {
		resp, _ := get(t, app, "/ui/"+name)
		require.Equal(t, 200, resp.StatusCode, name)
		require.Contains(t, resp.Header.Get("Content-Type"), ct, name)
	}
	resp, _ = get(t, app, "/ui/nothing.js")
	require.Equal(t, 404, resp.StatusCode)
}

// TestPageRelativeURLs: the page names its files and endpoints relative
// to itself (behind nginx's prefix /x/ui/ they are /x/ui/..., /x/v1/...),
// and loads nothing from elsewhere (no CDN: it works offline).
func TestPageRelativeURLs(t *testing.T) {
	abs := regexp.MustCompile(`(?:src|href|action)="/|fetch\('/|call\('/|https?://`)
	for name, f := range New(&fakeSource{}, Options{}).files {
		body := strings.ReplaceAll(string(f.body), "http://www.w3.org/2000/svg", "")
		require.Nil(t, abs.FindStringIndex(body), "%s: an absolute URL: %q", name, abs.FindString(body))
	}
}

func TestPageDataNeedsGuard(t *testing.T) {
	app := testApp(t, &fakeSource{health: fixture(t, "health-one.json"), collErr: ErrNoRAG})
	for _, path := range []string{"/ui/api/state", "/ui/api/history"} {
		resp, _ := get(t, app, path)
		require.Equal(t, 401, resp.StatusCode, path)
		resp, body := get(t, app, path, "Authorization", "Bearer k")
		require.Equal(t, 200, resp.StatusCode, path)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		require.True(t, json.Valid([]byte(body)), body)
	}
	_, body := get(t, app, "/ui/api/state", "Authorization", "Bearer k")
	var st State
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, "ok", st.Status)
	require.Equal(t, "test", st.Replica)
	require.Equal(t, 900.0, st.History.SpanS)
}

func TestPageHistorySince(t *testing.T) {
	app := testApp(t, &fakeSource{})
	for q, status := range map[string]int{"": 200, "0": 200, "1796191383042": 200, "-1": 400, "abc": 400, "1e3": 400, "99999999999999999999": 400} {
		resp, body := get(t, app, "/ui/api/history?since="+q, "Authorization", "Bearer k")
		require.Equal(t, status, resp.StatusCode, "since=%s: %s", q, body)
		if status == 200 {
			var h HistoryResponse
			require.NoError(t, json.Unmarshal([]byte(body), &h))
			require.NotNil(t, h.Points)
			require.Equal(t, 2.0, h.IntervalS)
		}
	}
}
