package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"
)

func init() {
	register("healthcheck", "exit 0 iff the local server's /health/ready answers 200 (for Docker HEALTHCHECK)", runHealthcheck)
}

func runHealthcheck(args []string) error {
	var url string
	var timeout time.Duration
	cfg, _, err := loadConfig("healthcheck", args, func(fs *flag.FlagSet) {
		fs.StringVar(&url, "url", "", "readiness URL (default: /health/ready on the configured listen port)")
		fs.DurationVar(&timeout, "timeout", 5*time.Second, "request timeout")
	})
	if err != nil {
		return err
	}
	if url == "" {
		listen := cfg.Server.Listen
		if cfg.Server.HealthListen != "" {
			listen = cfg.Server.HealthListen
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return fmt.Errorf("server.listen %q: %w", listen, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url = "http://" + net.JoinHostPort(host, port) + "/health/ready"
	}
	resp, err := (&http.Client{Timeout: timeout}).Get(url)
	if err != nil {
		return fmt.Errorf("not healthy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s answered %d", url, resp.StatusCode)
	}
	return nil
}
