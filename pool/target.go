package pool

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Target is one engine as discovery finds it.
type Target struct {
	URL      string // base URL, normalised: scheme://host:port, no path
	Parallel int    // the engine's slots; 0: the pool's default
	Source   string // "static", "dns" or "docker"
}

// Name is the engine's host:port: its label in metrics, logs and /health.
func (t Target) Name() string { return hostPort(t.URL) }

func hostPort(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	return rest
}

// ParseTargets parses a comma-separated list of engine base URLs, each
// optionally with a #parallel=N fragment (slots of that engine). An empty
// list is no targets.
func ParseTargets(list string) ([]Target, error) {
	var out []Target
	seen := map[string]bool{}
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		t, err := ParseTarget(raw)
		if err != nil {
			return nil, err
		}
		if seen[t.URL] {
			return nil, fmt.Errorf("engine %q listed twice", t.URL)
		}
		seen[t.URL] = true
		out = append(out, t)
	}
	return out, nil
}

// ParseTarget parses one engine base URL (http://host:port, the port
// defaulting to Ollama's 11434) with an optional #parallel=N fragment.
func ParseTarget(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("engine %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return Target{}, fmt.Errorf("engine %q: not an http(s) base URL like http://gpu0:11434", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return Target{}, fmt.Errorf("engine %q: a base URL has no path, query or user", raw)
	}
	host := u.Host
	if u.Port() == "" {
		port := "11434"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	t := Target{URL: u.Scheme + "://" + host, Source: "static"}
	if u.Fragment != "" {
		for _, kv := range strings.Split(u.Fragment, "&") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "parallel":
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 1024 {
					return Target{}, fmt.Errorf("engine %q: parallel=%q is not a number from 1 to 1024", raw, v)
				}
				t.Parallel = n
			default:
				return Target{}, fmt.Errorf("engine %q: unknown option %q (only parallel=N)", raw, k)
			}
		}
	}
	return t, nil
}

// modelKey is the name a model is matched by: Ollama's "name" and
// "name:latest" are the same model.
func modelKey(name string) string {
	if name == "" {
		return ""
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name
	}
	return name + ":latest"
}
