package scaling

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aurax/aurax/metrics"
)

// Resolver resolves the peers' DNS name. *net.Resolver satisfies it.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

type netResolver struct{}

func (netResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	return net.DefaultResolver.LookupHost(ctx, host)
}

// PeersObserver reads every replica's GET /v1/scaling/signals. A peer that
// does not answer in Timeout counts as Missing, never as zero load.
type PeersObserver struct {
	Name     string
	Port     int
	Client   *http.Client
	Timeout  time.Duration
	Resolver Resolver
	rates    *rateTracker
}

// Peers resolves the sorted, de-duplicated peer addresses.
func (p *PeersObserver) Peers(ctx context.Context) ([]string, error) {
	addrs, err := p.Resolver.LookupHost(ctx, p.Name)
	if err != nil {
		return nil, fmt.Errorf("resolve peers %q: %w", p.Name, err)
	}
	return sortAddrs(addrs), nil
}

// Observe implements Observer: one request per peer, in parallel, all
// finished before it returns.
func (p *PeersObserver) Observe(ctx context.Context) (Observation, error) {
	addrs, err := p.Peers(ctx)
	if err != nil {
		return Observation{}, err
	}
	if p.rates == nil {
		p.rates = newRateTracker()
	}
	type answer struct {
		s   metrics.Signals
		err error
	}
	answers := make([]answer, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			s, err := p.fetch(ctx, a)
			answers[i] = answer{s, err}
		})
	}
	wg.Wait()
	var snaps []metrics.Signals
	var rates []float64
	keep := map[string]bool{}
	var errs []error
	for i, a := range answers {
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		keep[addrs[i]] = true
		snaps = append(snaps, a.s)
		rates = append(rates, p.rates.rate(addrs[i], a.s))
	}
	p.rates.forget(keep)
	if len(snaps) == 0 {
		return Observation{}, fmt.Errorf("no peer answered: %w", errors.Join(errs...))
	}
	return aggregate(time.Now(), snaps, rates, len(addrs)-len(snaps)), nil
}

func (p *PeersObserver) fetch(ctx context.Context, addr string) (metrics.Signals, error) {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	u := "http://" + net.JoinHostPort(addr, strconv.Itoa(p.Port)) + "/v1/scaling/signals"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return metrics.Signals{}, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return metrics.Signals{}, fmt.Errorf("peer %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return metrics.Signals{}, fmt.Errorf("peer %s: %s", addr, resp.Status)
	}
	s, err := DecodeSignals(resp.Body)
	if err != nil {
		return s, fmt.Errorf("peer %s: %w", addr, err)
	}
	return s, nil
}

// sortAddrs orders addresses numerically (IPs) then lexically, without
// duplicates: the first is the leader.
func sortAddrs(addrs []string) []string {
	out := slices.Clone(addrs)
	slices.SortFunc(out, func(a, b string) int {
		pa, ea := netip.ParseAddr(a)
		pb, eb := netip.ParseAddr(b)
		if ea == nil && eb == nil {
			return pa.Compare(pb)
		}
		if (ea == nil) != (eb == nil) {
			if ea == nil {
				return -1
			}
			return 1
		}
		if a < b {
			return -1
		} else if a > b {
			return 1
		}
		return 0
	})
	return slices.Compact(out)
}

// Elector says whether this replica may act. The controller asks it every
// tick; an error means "not leader this tick".
type Elector interface {
	Leader(ctx context.Context) (leader string, self bool, err error)
}

// Single is the elector of a lone replica: always the leader.
type Single struct{}

// Leader implements Elector.
func (Single) Leader(context.Context) (string, bool, error) { return "self", true, nil }

// LowestAddress elects the replica with the lowest address among the peers'
// DNS name; Self is this replica's address (or, empty, any address of this
// host's interfaces).
type LowestAddress struct {
	Peers *PeersObserver
	Self  string
	// Local lists this host's addresses; nil uses net.InterfaceAddrs.
	Local func() ([]string, error)
}

// Leader implements Elector.
func (l *LowestAddress) Leader(ctx context.Context) (string, bool, error) {
	addrs, err := l.Peers.Peers(ctx)
	if err != nil {
		return "", false, err
	}
	if len(addrs) == 0 {
		return "", false, errors.New("no peers resolved")
	}
	leader := addrs[0]
	mine, err := l.mine()
	if err != nil {
		return leader, false, err
	}
	return leader, slices.Contains(mine, leader), nil
}

// mine are this replica's addresses: Self, or (empty) every address of
// this host's interfaces.
func (l *LowestAddress) mine() ([]string, error) {
	if l.Self != "" {
		return []string{l.Self}, nil
	}
	if l.Local != nil {
		return l.Local()
	}
	return interfaceAddrs()
}

func interfaceAddrs() ([]string, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().String())
		}
	}
	return out, nil
}

// Gateways reports this replica's index among the peers and their count:
// the engine pool's GatewaySource, so that gateways over one pool share
// each engine's slots.
func (l *LowestAddress) Gateways(ctx context.Context) (self, n int, err error) {
	addrs, err := l.Peers.Peers(ctx)
	if err != nil {
		return 0, 0, err
	}
	mine, err := l.mine()
	if err != nil {
		return 0, 0, err
	}
	for i, a := range addrs {
		if slices.Contains(mine, a) {
			return i, len(addrs), nil
		}
	}
	return 0, 0, fmt.Errorf("this replica is not among the %d peers of %q", len(addrs), l.Peers.Name)
}

// Others are the peers' addresses but this replica's: the other gateways.
func (l *LowestAddress) Others(ctx context.Context) ([]string, error) {
	addrs, err := l.Peers.Peers(ctx)
	if err != nil {
		return nil, err
	}
	mine, err := l.mine()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(addrs, func(a string) bool { return slices.Contains(mine, a) }), nil
}
