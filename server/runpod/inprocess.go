package runpod

import (
	"context"
	"net"
	"net/http"

	"github.com/valyala/fasthttp/fasthttputil"
)

// InProcessURL is the base URL of the in-process API.
const InProcessURL = "http://aurax.in-process"

// InProcess connects an http.Client to a server in the same process: the
// server serves Listener (e.g. server.Server.Run(ctx, p.Listener(), nil)),
// Client dials it in memory. Requests go through the whole Fiber chain.
type InProcess struct {
	ln *fasthttputil.InmemoryListener
}

// NewInProcess returns an in-memory listener and its client side.
func NewInProcess() *InProcess { return &InProcess{ln: fasthttputil.NewInmemoryListener()} }

// Listener is the server side; the server's shutdown closes it.
func (p *InProcess) Listener() net.Listener { return p.ln }

// Client returns an http.Client whose every connection is in memory.
func (p *InProcess) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return p.ln.Dial()
		},
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   false,
		DisableCompression:  true,
	}}
}
