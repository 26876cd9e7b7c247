// Command replica is the stand-in service of the Docker tests: a static HTTP
// server for a FROM scratch image. It answers / with its hostname, /health
// with 200 once READY_AFTER has passed, and on SIGTERM waits DRAIN before it
// exits 0, as a draining AURAX would. `replica check` is its HEALTHCHECK.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := env("LISTEN", ":8080")
	if len(os.Args) > 1 && os.Args[1] == "check" {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://127.0.0.1" + addr + "/health")
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		os.Exit(0)
	}
	readyAfter, _ := time.ParseDuration(env("READY_AFTER", "0s"))
	drain, _ := time.ParseDuration(env("DRAIN", "1s"))
	start := time.Now()
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < readyAfter {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, host) })
	srv := &http.Server{Addr: addr, Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); time.Sleep(drain); _ = srv.Shutdown(context.Background()) }()
	fmt.Println("replica listening on", addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("replica drained")
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
