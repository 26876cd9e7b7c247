package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Discoverer finds engines. Run sends the whole current set of targets on
// up, the first as soon as it is known and then whenever it changes, until
// ctx ends; it returns after its last send. A failed lookup keeps the last
// set in force (and is logged), so that a resolver's hiccup does not drain
// every engine.
type Discoverer interface {
	Run(ctx context.Context, up chan<- []Target)
}

// Resolver resolves a host name to addresses; *net.Resolver satisfies it.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DNS finds engines as every A/AAAA record of Host, each at Port: a Compose
// service name or a Kubernetes headless Service. It resolves again every
// Interval.
type DNS struct {
	Host     string
	Port     int
	Scheme   string        // default http
	Parallel int           // slots per engine; 0: the pool's default
	Interval time.Duration // default 5s
	Resolver Resolver      // default net.DefaultResolver
	Logger   *slog.Logger
}

// ParseDiscover parses one ollama.discover entry: dns:HOST:PORT (the port
// defaults to 11434) or docker:LABEL=VALUE. It returns the kind and the
// rest, validated.
func ParseDiscover(spec string) (kind, host string, port int, label string, err error) {
	kind, rest, ok := strings.Cut(strings.TrimSpace(spec), ":")
	if !ok || rest == "" {
		return "", "", 0, "", fmt.Errorf("%q is not dns:HOST:PORT or docker:LABEL=VALUE", spec)
	}
	switch kind {
	case "dns":
		host, portS, err := net.SplitHostPort(rest)
		if err != nil {
			host, portS = rest, "11434"
		}
		port, err := strconv.Atoi(portS)
		if host == "" || err != nil || port < 1 || port > 65535 {
			return "", "", 0, "", fmt.Errorf("%q: dns:HOST:PORT needs a host and a port from 1 to 65535", spec)
		}
		return kind, host, port, "", nil
	case "docker":
		k, _, ok := strings.Cut(rest, "=")
		if !ok || k == "" {
			return "", "", 0, "", fmt.Errorf("%q: docker:LABEL=VALUE needs a label and a value", spec)
		}
		return kind, "", 0, rest, nil
	}
	return "", "", 0, "", fmt.Errorf("%q: unknown discovery %q (dns or docker)", spec, kind)
}

// Run implements Discoverer.
func (d *DNS) Run(ctx context.Context, up chan<- []Target) {
	interval := d.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	res := d.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	scheme := d.Scheme
	if scheme == "" {
		scheme = "http"
	}
	var last []Target
	sent := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, interval)
		addrs, err := res.LookupHost(lctx, d.Host)
		cancel()
		var dnsErr *net.DNSError
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			addrs, err = nil, nil // no such name: no engine (a service scaled to zero)
		case err != nil:
			log.Warn("engine discovery: lookup failed, keeping the last set", "host", d.Host, "err", err)
		}
		if err == nil {
			ts := make([]Target, 0, len(addrs))
			for _, a := range slices.Sorted(slices.Values(addrs)) {
				ts = append(ts, Target{URL: scheme + "://" + net.JoinHostPort(a, strconv.Itoa(d.Port)), Parallel: d.Parallel, Source: "dns"})
			}
			ts = slices.CompactFunc(ts, func(a, b Target) bool { return a.URL == b.URL })
			if !sent || !slices.Equal(ts, last) {
				select {
				case up <- ts:
				case <-ctx.Done():
					return
				}
				last, sent = ts, true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
