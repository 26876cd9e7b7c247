package server

import (
	"context"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/ui"
	"github.com/valyala/fasthttp"
)

// The status page (package ui) at /ui: this file is what it reads from the
// server. Its data endpoints take the API key when keys are configured.

func (s *Server) initUI() {
	s.ui = ui.New(uiSource{s}, ui.Options{Admin: s.cfg.Auth.AdminKey != ""})
	s.metrics.SetTap(s.ui.History())
}

// StatusPage is the status page; serve runs its history sampler (Run).
func (s *Server) StatusPage() *ui.Page { return s.ui }

// uiSource is the server as the status page sees it.
type uiSource struct{ s *Server }

var _ ui.Source = uiSource{}

// Health renders GET /health in-process, so that the page shows exactly
// what probes and operators see (the pool's engines included) without a
// request through the middleware and its metrics.
func (u uiSource) Health(context.Context) ([]byte, error) {
	c := u.s.app.AcquireCtx(&fasthttp.RequestCtx{})
	defer u.s.app.ReleaseCtx(c)
	if err := u.s.healthz(c); err != nil {
		return nil, err
	}
	return append([]byte(nil), c.Response().Body()...), nil
}

func (u uiSource) Queue() metrics.QueueStats {
	st := u.s.pool.Stats()
	return metrics.QueueStats{Waiting: st.Waiting, InFlight: st.InFlight, Slots: st.Slots, Engines: st.Ready, Starting: st.Starting}
}

func (u uiSource) Scaling() (scaling.Status, bool) {
	if u.s.scaler == nil {
		return scaling.Status{}, false
	}
	return u.s.scaler.Status(), true
}

func (u uiSource) Collections(ctx context.Context) ([]rag.CollectionInfo, error) {
	if u.s.rag == nil {
		return nil, ui.ErrNoRAG
	}
	return u.s.rag.Store.ListCollections(ctx)
}
