// Command fakeupstream serves internal/fakeollama (Ollama's wire format with a
// fixed latency and no model) on LISTEN (default :11434), for the Docker
// end-to-end test's FROM scratch upstream image. LATENCY, TOKENS, INTERVAL
// and MODELS (comma-separated) shape its answers.
package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aurax/aurax/internal/fakeollama"
)

func main() {
	latency, _ := time.ParseDuration(env("LATENCY", "1s"))
	interval, _ := time.ParseDuration(env("INTERVAL", "10ms"))
	tokens, _ := strconv.Atoi(env("TOKENS", "8"))
	fake, err := fakeollama.Start(fakeollama.Options{Latency: latency, Tokens: tokens, Interval: interval,
		Models: strings.Split(env("MODELS", "fake"), ",")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer fake.Close()
	u, _ := url.Parse(fake.URL)
	srv := &http.Server{Addr: env("LISTEN", ":11434"), Handler: httputil.NewSingleHostReverseProxy(u),
		ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	fmt.Println("fake upstream on", srv.Addr, "latency", latency)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
