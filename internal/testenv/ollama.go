package testenv

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Engine is a real `ollama serve` a test started: one engine of a pool. It
// runs in its own process group, so that Kill ends its runners too.
type Engine struct {
	t    testing.TB
	URL  string
	Addr string
	env  []string
	cmd  *exec.Cmd
	log  string
}

// StartEngine starts a real Ollama on addr (host:port; empty: a free
// loopback port) serving the models `make ollama` created: the binary and
// the models directory come from AURAX_TEST_OLLAMA_BIN and
// AURAX_TEST_OLLAMA_MODELS, which `make test` sets. env adds OLLAMA_*
// settings (OLLAMA_MAX_LOADED_MODELS=1, say). The engine is killed, runners
// included, when the test ends. Without the variables the test is skipped
// (failed under CI).
func StartEngine(t testing.TB, addr string, env ...string) *Engine {
	t.Helper()
	bin, dir := os.Getenv("AURAX_TEST_OLLAMA_BIN"), os.Getenv("AURAX_TEST_OLLAMA_MODELS")
	if bin == "" || dir == "" {
		Missing(t, "AURAX_TEST_OLLAMA_BIN and AURAX_TEST_OLLAMA_MODELS are not set: run `make test`")
	}
	if addr == "" {
		addr = FreeAddr(t, "127.0.0.1")
	}
	e := &Engine{t: t, Addr: addr, URL: "http://" + addr, log: filepath.Join(t.TempDir(), "ollama.log"),
		env: append([]string{"OLLAMA_HOST=" + addr, "OLLAMA_MODELS=" + dir, "OLLAMA_NOPRUNE=1"}, env...)}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	e.start(bin)
	t.Cleanup(e.Kill)
	return e
}

func (e *Engine) start(bin string) {
	e.t.Helper()
	logf, err := os.OpenFile(e.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), e.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start ollama: %v", err)
	}
	e.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(e.URL + "/api/version")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(e.log)
	e.Kill()
	e.t.Fatalf("ollama on %s did not answer in 30s:\n%s", e.Addr, tail(string(b), 2000))
}

// Kill ends the engine and its runners at once (SIGKILL to its process
// group), as a crashed machine would; safe to call twice.
func (e *Engine) Kill() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	_ = e.cmd.Wait()
	e.cmd = nil
}

// Restart starts the engine again on the same address, after Kill.
func (e *Engine) Restart() {
	e.t.Helper()
	bin, _ := filepath.Abs(os.Getenv("AURAX_TEST_OLLAMA_BIN"))
	e.start(bin)
}

// Log is what the engine printed so far.
func (e *Engine) Log() string {
	b, _ := os.ReadFile(e.log)
	return string(b)
}

// FreeAddr returns host:port with a port free on host right now.
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", host, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
