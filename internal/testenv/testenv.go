// Package testenv finds the real components the tests run against (a real
// Ollama serving the tiny models) and decides what a test does without them:
// skip on a developer's machine, fail under CI, where `make test` starts them.
package testenv

import (
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Names of the tiny models `make ollama` creates in the test Ollama.
const (
	ChatModel  = "aurax-tiny"
	EmbedModel = "aurax-tiny-embed"
)

// Ollama returns the base URL (http://host:port) of the test Ollama, taken
// from AURAX_TEST_OLLAMA, which `make test` sets after `make ollama`. Without
// it the test is skipped, or fails when CI is set: CI must not pass by
// skipping the real component.
func Ollama(t testing.TB) string {
	t.Helper()
	u := os.Getenv("AURAX_TEST_OLLAMA")
	if u == "" {
		Missing(t, "AURAX_TEST_OLLAMA is not set: run `make ollama` or `make test`")
	}
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return strings.TrimRight(u, "/")
}

// Missing skips t with reason, or fails it when CI is set.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("required test component missing under CI: %s", reason)
	}
	t.Skip(reason)
}

// LeakOptions are the goroutines goleak must not count in packages that run
// Fiber and HTTP clients: fasthttp's process-wide date updater and worker
// pool cleaner, and idle keep-alive connections of shared transports.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	}
}
