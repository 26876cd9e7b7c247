package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultOllamaURL is the engine AURAX uses when neither ollama.url,
// OLLAMA_HOST nor ollama.discover names one: Ollama's own default.
const DefaultOllamaURL = "http://127.0.0.1:11434"

// engineURLs is ollama.url, or the default engine when it and
// ollama.discover are both empty (a Config that did not go through Load).
func (c Config) engineURLs() string {
	if c.Ollama.URL == "" && len(c.Ollama.Discover) == 0 {
		return DefaultOllamaURL
	}
	return c.Ollama.URL
}

// defaultEngine fills an empty ollama.url from OLLAMA_HOST, the variable
// every Ollama user already has, else with Ollama's default address. An
// explicit ollama.url wins; ollama.discover alone means no static engine.
func (c *Config) defaultEngine(lookup func(string) (string, bool)) error {
	if c.Ollama.URL != "" || len(c.Ollama.Discover) > 0 {
		return nil
	}
	c.Ollama.URL = DefaultOllamaURL
	if lookup == nil {
		return nil
	}
	v, _ := lookup("OLLAMA_HOST")
	if v = strings.Trim(strings.TrimSpace(v), `"'`); v == "" {
		return nil
	}
	u, err := OllamaHostURL(v)
	if err != nil {
		return fmt.Errorf("ollama.url from OLLAMA_HOST=%q: %w", v, err)
	}
	c.Ollama.URL = u
	return nil
}

// OllamaHostURL turns an OLLAMA_HOST value into an engine base URL the way
// Ollama's own client reads it (envconfig.Host): "host", "host:port",
// ":port" and "[::1]" get scheme http and, without a port, 11434;
// "http://host" and "https://host" default to 80 and 443; "ollama.com" is
// https on 443. An empty host or one that means "every interface" to a
// server (0.0.0.0, ::) is this machine to a client. A port that is not a
// number falls back to the default, as in Ollama.
func OllamaHostURL(v string) (string, error) {
	defaultPort := "11434"
	scheme, hostport, ok := strings.Cut(strings.TrimSpace(v), "://")
	switch {
	case !ok:
		scheme, hostport = "http", v
		if v == "ollama.com" {
			scheme, hostport = "https", "ollama.com:443"
		}
	case scheme == "http":
		defaultPort = "80"
	case scheme == "https":
		defaultPort = "443"
	default:
		return "", fmt.Errorf("scheme %q is not http or https", scheme)
	}
	hostport, path, _ := strings.Cut(hostport, "/")
	if path != "" {
		return "", fmt.Errorf("a base URL has no path (%q)", "/"+path)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = "", defaultPort
		if ip := net.ParseIP(strings.Trim(hostport, "[]")); ip != nil {
			host = ip.String()
		} else {
			host = hostport
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		port = defaultPort
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}
