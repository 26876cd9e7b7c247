// Package docker discovers engines as the running containers that carry a
// label, through the Docker Engine API, following its event stream so that
// a container that starts (or stops) is seen within a second.
package docker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurax/aurax/internal/ctxtime"
	"github.com/aurax/aurax/internal/retry"
	"github.com/aurax/aurax/pool"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Labels a container may carry to describe its engine.
const (
	LabelPort     = "io.aurax.engine.port"     // the port Ollama listens on inside (default 11434)
	LabelParallel = "io.aurax.engine.parallel" // the engine's slots (OLLAMA_NUM_PARALLEL)
)

// Engine is the part of the Docker Engine client discovery uses.
type Engine interface {
	ContainerList(ctx context.Context, opts client.ContainerListOptions) (client.ContainerListResult, error)
	Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult
}

// Options shape a Discoverer.
type Options struct {
	Port     int           // default 11434
	Network  string        // prefer the address on this network (default: the first network by name)
	Parallel int           // slots per engine without LabelParallel; 0: the pool's default
	Resync   time.Duration // list again this often even without events (default 30s)
	Debounce time.Duration // after an event, wait this long for more (default 100ms)
	Logger   *slog.Logger
}

// Discoverer lists the running containers with one label (key=value).
type Discoverer struct {
	cli   Engine
	label string
	opts  Options
	log   *slog.Logger
}

var _ pool.Discoverer = (*Discoverer)(nil)

// New returns a discoverer of the containers labelled selector (key=value).
func New(cli Engine, selector string, opts Options) (*Discoverer, error) {
	if k, _, ok := strings.Cut(selector, "="); !ok || k == "" {
		return nil, fmt.Errorf("docker discovery: %q is not LABEL=VALUE", selector)
	}
	if opts.Port == 0 {
		opts.Port = 11434
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Discoverer{cli: cli, label: selector, opts: opts, log: opts.Logger.With("component", "pool/docker", "label", selector)}, nil
}

// Run implements pool.Discoverer.
func (d *Discoverer) Run(ctx context.Context, up chan<- []pool.Target) {
	var last []pool.Target
	sent := false
	publish := func() {
		ts, err := d.list(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("engine discovery: list failed, keeping the last set", "err", err)
			}
			return
		}
		if sent && slices.Equal(ts, last) {
			return
		}
		select {
		case up <- ts:
			last, sent = ts, true
		case <-ctx.Done():
		}
	}
	resync := time.NewTicker(d.opts.Resync)
	defer resync.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	backoff := retry.Backoff{Initial: time.Second, Max: 30 * time.Second}
	failures := 0 // resubscriptions since the last event
	for ctx.Err() == nil {
		ectx, cancel := context.WithCancel(ctx)
		ev := d.cli.Events(ectx, client.EventsListOptions{Filters: make(client.Filters).Add("type", "container").Add("label", d.label)})
		publish() // after subscribing: nothing between the list and the stream is missed
		streaming := true
		for streaming {
			select {
			case <-ctx.Done():
				streaming = false
			case _, ok := <-ev.Messages:
				if !ok {
					streaming = false
					break
				}
				failures = 0
				debounce.Reset(d.opts.Debounce)
			case err := <-ev.Err:
				if ctx.Err() == nil {
					d.log.Warn("engine discovery: event stream ended; resubscribing", "err", err, "resubscriptions", failures+1)
				}
				streaming = false
			case <-debounce.C:
				publish()
			case <-resync.C:
				publish()
			}
		}
		cancel()
		failures++
		_ = ctxtime.Sleep(ctx, backoff.Delay(failures)) // a cancel ends the loop
	}
}

// list is the current set: every running container with the label, at
// its address on the preferred network.
func (d *Discoverer) list(ctx context.Context) ([]pool.Target, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := d.cli.ContainerList(lctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", d.label)})
	if err != nil {
		return nil, err
	}
	var out []pool.Target
	for _, c := range res.Items {
		if c.State != container.StateRunning {
			continue
		}
		ip := d.address(c)
		if ip == "" {
			d.log.Debug("container has no network address", "container", c.ID[:min(12, len(c.ID))])
			continue
		}
		port := d.opts.Port
		if v, err := strconv.Atoi(c.Labels[LabelPort]); err == nil && v > 0 && v < 65536 {
			port = v
		}
		t := pool.Target{URL: "http://" + net.JoinHostPort(ip, strconv.Itoa(port)), Parallel: d.opts.Parallel, Source: "docker"}
		if v, err := strconv.Atoi(c.Labels[LabelParallel]); err == nil && v > 0 {
			t.Parallel = v
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out, nil
}

func (d *Discoverer) address(c container.Summary) string {
	if c.NetworkSettings == nil {
		return ""
	}
	nets := c.NetworkSettings.Networks
	if n := nets[d.opts.Network]; d.opts.Network != "" && n != nil && n.IPAddress.IsValid() {
		return n.IPAddress.String()
	}
	names := make([]string, 0, len(nets))
	for name := range nets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if n := nets[name]; n != nil && n.IPAddress.IsValid() {
			return n.IPAddress.String()
		}
	}
	return ""
}
