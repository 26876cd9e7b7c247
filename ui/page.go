package ui

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"mime"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aurax/aurax/rag"
	"github.com/gofiber/fiber/v2"
)

//go:embed assets
var assets embed.FS

// Options configure New.
type Options struct {
	// Admin says whether an admin key is configured, so that the page can
	// say when its buttons cannot work. The key itself is never given here.
	Admin bool
	// Replica names this process on the page; default the host name.
	Replica string
	// Timeout bounds the Source calls of one refresh; default 2s.
	Timeout time.Duration
	// History configures the history; see HistoryOptions.
	History HistoryOptions
}

// Page is the status page: its embedded files, its data endpoints and
// the history behind its charts. Run samples the history.
type Page struct {
	src     Source
	opts    Options
	history *History
	files   map[string]file
}

type file struct {
	body        []byte
	contentType string
	etag        string
}

// New returns the page over src.
func New(src Source, opts Options) *Page {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Replica == "" {
		opts.Replica, _ = os.Hostname()
	}
	p := &Page{src: src, opts: opts, history: NewHistory(src, opts.History), files: map[string]file{}}
	err := fs.WalkDir(assets, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		p.files[strings.TrimPrefix(name, "assets/")] = file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil { // the files are compiled in: this is a build defect
		panic("ui: read embedded assets: " + err.Error())
	}
	return p
}

// History is the page's history: the metrics.Tap to install on the
// server's metrics.
func (p *Page) History() *History { return p.history }

// Run samples the history until ctx ends, then returns nil.
func (p *Page) Run(ctx context.Context) error { return p.history.Run(ctx) }

// Routes registers the page on r (the app's "/ui" group): the page and its
// files, which hold nothing secret and are public, and the data endpoints
// behind guard (the API-key check). Errors are returned as *fiber.Error
// for the app's error handler to render.
func (p *Page) Routes(r fiber.Router, guard fiber.Handler) {
	api := r.Group("/api", guard, noStore)
	api.Get("/state", p.state)
	api.Get("/history", p.historyPoints)
	r.Get("/", p.index)
	r.Get("/:file", p.asset)
}

// Security headers of the page: nothing but its own files, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// index serves the page at /ui/. /ui itself redirects to ui/ (relative,
// so that it works under a proxy's path prefix): the page's relative URLs
// need the trailing slash.
func (p *Page) index(c *fiber.Ctx) error {
	if !strings.HasSuffix(string(c.Request().URI().Path()), "/") {
		c.Set(fiber.HeaderLocation, "ui/")
		return c.SendStatus(fiber.StatusFound)
	}
	return p.send(c, "index.html")
}

func (p *Page) asset(c *fiber.Ctx) error { return p.send(c, c.Params("file")) }

func (p *Page) send(c *fiber.Ctx, name string) error {
	f, ok := p.files[name]
	if !ok {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderContentSecurityPolicy, csp)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, f.etag)
	if c.Get(fiber.HeaderIfNoneMatch) == f.etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, f.contentType)
	return c.Send(f.body)
}

func noStore(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}

// HistoryResponse is the body of GET /ui/api/history.
type HistoryResponse struct {
	IntervalS float64 `json:"interval_s"`
	SpanS     float64 `json:"span_s"`
	Now       int64   `json:"now"`    // Unix milliseconds
	Points    []Point `json:"points"` // newer than since, oldest first
}

// historyPoints answers the points newer than ?since= (Unix milliseconds;
// absent or 0: all of the span), so that a page fetches each point once.
func (p *Page) historyPoints(c *fiber.Ctx) error {
	since, err := parseSince(c.Query("since"))
	if err != nil {
		return err
	}
	return c.JSON(HistoryResponse{IntervalS: p.history.interval.Seconds(), SpanS: p.history.span.Seconds(),
		Now: p.history.now().UnixMilli(), Points: p.history.Points(since)})
}

// parseSince reads the since parameter: empty, or a non-negative integer.
func parseSince(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fiber.NewError(fiber.StatusBadRequest, "since: "+strconv.Quote(truncate(s, 32))+" is not a time in Unix milliseconds")
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// state answers everything but the charts, from one read of each source.
func (p *Page) state(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), p.opts.Timeout)
	defer cancel()
	return c.JSON(p.State(ctx))
}

// State builds the body of GET /ui/api/state. A source that fails shows
// as its part of the page saying so; State itself does not fail.
func (p *Page) State(ctx context.Context) State {
	h := p.history
	q := p.src.Queue()
	traffic, mq := h.summary()
	st := State{Time: time.Now(), Replica: p.opts.Replica, Status: "unknown", Reasons: []string{}, Engines: []Engine{},
		Queue:   Queue{Waiting: q.Waiting, InFlight: q.InFlight, Slots: q.Slots, WaitP95MS: mq.waitP95MS, Rejected1m: mq.rejected},
		Traffic: traffic, RAG: RAG{Collections: []rag.CollectionInfo{}},
		History: HistoryInfo{IntervalS: h.interval.Seconds(), SpanS: h.span.Seconds()}}

	body, err := p.src.Health(ctx)
	var hl *health
	if err == nil {
		hl, err = decodeHealth(body)
	}
	if err != nil {
		st.Reasons = append(st.Reasons, "health unreadable: "+err.Error())
	} else {
		st.Status, st.Version, st.UptimeS, st.Draining = hl.Status, hl.Version, hl.UptimeS, hl.Draining
		if hl.Engines != nil {
			st.Engines = hl.Engines
		}
		st.Reasons = hl.reasons()
		st.Models, st.GPU = hl.Checks.Models, hl.Checks.GPU
		st.Queue.MaxWaiting = hl.Checks.Queue.MaxWaiting
		r := hl.Checks.RAG
		st.RAG.Enabled, st.RAG.OK, st.RAG.Store, st.RAG.Error = r.Enabled, r.OK, r.Store, r.Error
	}

	if st.RAG.Enabled || hl == nil {
		list, err := p.src.Collections(ctx)
		switch {
		case errors.Is(err, ErrNoRAG):
			st.RAG.Enabled = false
		case err != nil:
			st.RAG.Enabled = true
			if st.RAG.Error == "" {
				st.RAG.Error = "list collections: " + err.Error()
			}
		default:
			st.RAG.Enabled = true
			if list != nil {
				st.RAG.Collections = list
			}
		}
	}

	if sc, ok := p.src.Scaling(); ok {
		h.Ingest(sc)
		st.Scaling = &Scaling{Policy: sc.Policy, Mode: sc.Mode, Provider: sc.Provider, DryRun: sc.DryRun, Leader: sc.Leader,
			IsLeader: sc.IsLeader, Current: sc.Current, Desired: sc.Desired, Min: sc.Min, Max: sc.Max, Paused: sc.Paused,
			Manual: sc.Manual, Cooldowns: sc.Cooldowns, Admin: p.opts.Admin, Decisions: h.Decisions()}
	}
	return st
}
