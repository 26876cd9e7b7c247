package ui

import (
	"context"
	"encoding/json"
	"testing"

	"net/url"

	"github.com/aurax/aurax/metrics"
)

// FuzzHealth feeds arbitrary /health bodies to the page: State never
// panics, always has a status the page knows and lists (never nulls) for
// the page to draw, and says why when it is not ok.
func FuzzHealth(f *testing.F) {
	f.Add(string(fixture(f, "health-one.json")))
	f.Add(string(fixture(f, "health-engines.json")))
	f.Add(`{"status":"down","engines":null}`)
	f.Add(`{"status":"ok","engines":[{"name":"e","state":"weird","service_ewma_ms":{"m":1e308},"pulls":[{"percent":-1}]}]}`)
	f.Add(`{"status":"degraded","engines":[{"ok":true}],"checks":{"models":{"default":"x"}}}`)
	f.Add(`[]`)
	src := &fakeSource{collErr: ErrNoRAG}
	p := New(src, Options{})
	f.Fuzz(func(t *testing.T, body string) {
		src.mu.Lock()
		src.health = []byte(body)
		src.mu.Unlock()
		st := p.State(context.Background())
		switch st.Status {
		case "ok", "degraded", "down", "unknown":
		default:
			t.Fatalf("status %q", st.Status)
		}
		if st.Engines == nil || st.Reasons == nil || st.RAG.Collections == nil {
			t.Fatalf("a nil list: %+v", st)
		}
		if st.Status != "ok" && len(st.Reasons) == 0 {
			t.Fatalf("status %s without a reason", st.Status)
		}
		if _, err := json.Marshal(st); err != nil {
			t.Fatalf("state does not encode: %v", err)
		}
	})
}

// FuzzHistorySince feeds arbitrary since parameters to the history
// endpoint: 200 with points, or 400 with the reason; never anything else.
func FuzzHistorySince(f *testing.F) {
	for _, s := range []string{"", "0", "1796191383042", "-1", "x", "1e9", "9223372036854775807", "%00", "1&since=2"} {
		f.Add(s)
	}
	h := &fakeSource{}
	app := testApp(f, h)
	p := New(h, Options{})
	p.History().ObserveModel(metrics.ModelResult{ModelType: "m", HTTPStatus: 200})
	p.History().Sample()
	f.Fuzz(func(t *testing.T, since string) {
		if len(since) > 1000 { // longer URLs are fasthttp's to refuse (431), before any handler
			t.Skip()
		}
		v, err := parseSince(since)
		if err == nil && v < 0 {
			t.Fatalf("since %q parsed to %d", since, v)
		}
		resp, body := get(t, app, "/ui/api/history?since="+url.QueryEscape(since), "Authorization", "Bearer k")
		switch resp.StatusCode {
		case 200:
			var hr HistoryResponse
			if json.Unmarshal([]byte(body), &hr) != nil || hr.Points == nil {
				t.Fatalf("200 without points: %s", body)
			}
		case 400:
		default:
			t.Fatalf("since=%q: %d %s", since, resp.StatusCode, body)
		}
	})
}
