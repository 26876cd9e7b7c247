package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// ForgetEngine takes the engine named name (host:port or URL) out of the
// pool: its container stopped. A request still on it finishes first; the
// address, when discovery still lists it or lists it again, joins afresh
// (starting, then warmed), so a container restarted at the same address
// is not taken for the one that left.
func (p *Pool) ForgetEngine(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.engines {
		if e.name == name || e.URL == name {
			p.removeLocked(e, "stopped")
			// A discoverer may still list the address (its container is
			// restarting): it joins again afresh, starting.
			p.reconcileLocked()
			return true
		}
	}
	return false
}

// GatewayDrainer drains an engine out of every gateway over the pool: this
// one's Pool, and its peers through their admin API
// (POST /v1/pool/engines/{engine}/drain, DELETE /v1/pool/engines/{engine}).
// It is what the compose provider calls before it stops an engine.
type GatewayDrainer struct {
	Pool     *Pool
	Peers    func(ctx context.Context) ([]string, error) // the other gateways' base URLs; nil: none
	Client   *http.Client
	AdminKey string
	Logger   *slog.Logger
}

// Drain stops new requests to the engine at addr on every gateway and
// returns the requests still in flight on it over all of them. A peer that
// does not answer counts as none in flight, and the error says so.
func (d *GatewayDrainer) Drain(ctx context.Context, addr string) (int, error) {
	n, _ := d.Pool.DrainEngine(addr)
	var errs []error
	for _, peer := range d.peers(ctx) {
		var out struct {
			InFlight int `json:"in_flight"`
		}
		if err := d.call(ctx, http.MethodPost, peer+"/v1/pool/engines/"+url.PathEscape(addr)+"/drain", &out); err != nil {
			errs = append(errs, fmt.Errorf("gateway %s: %w", peer, err))
			continue
		}
		n += out.InFlight
	}
	return n, errors.Join(errs...)
}

// Forget tells every gateway that the engine at addr is gone.
func (d *GatewayDrainer) Forget(ctx context.Context, addr string) {
	d.Pool.ForgetEngine(addr)
	for _, peer := range d.peers(ctx) {
		if err := d.call(ctx, http.MethodDelete, peer+"/v1/pool/engines/"+url.PathEscape(addr), nil); err != nil && d.Logger != nil {
			d.Logger.Warn("forget engine on a gateway failed", "gateway", peer, "engine", addr, "err", err)
		}
	}
}

func (d *GatewayDrainer) peers(ctx context.Context) []string {
	if d.Peers == nil {
		return nil
	}
	ps, err := d.Peers(ctx)
	if err != nil && d.Logger != nil {
		d.Logger.Warn("gateways unknown: draining on this one only", "err", err)
	}
	return ps
}

func (d *GatewayDrainer) call(ctx context.Context, method, u string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	if d.AdminKey != "" {
		req.Header.Set("Authorization", "Bearer "+d.AdminKey)
	}
	c := d.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, u, resp.Status)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}
