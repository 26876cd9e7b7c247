package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/stretchr/testify/require"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// buildAurax compiles cmd/aurax once per test binary.
var buildAurax = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "aurax-deploy-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "aurax")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/aurax")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/aurax: %v\n%s", err, out)
	}
	return bin, nil
})

// startAurax runs `aurax serve` on a loopback port in front of upstream and
// waits until it is ready. It returns the process and its address.
func startAurax(t *testing.T, upstream string) (*exec.Cmd, string) {
	t.Helper()
	bin, err := buildAurax()
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"AURAX_SERVER_LISTEN="+addr,
		"AURAX_OLLAMA_URL="+upstream,
		"AURAX_MODELS_DEFAULT=fake",
		"AURAX_MODELS_EMBEDDING=",
		"AURAX_RAG_PATH="+filepath.Join(t.TempDir(), "rag.db"),
		"AURAX_SERVER_DRAIN_TIMEOUT=10s",
		"AURAX_QUEUE_MAX_INFLIGHT=8",
		"AURAX_SERVER_LOG_LEVEL=warn",
	)
	logf, err := os.Create(filepath.Join(t.TempDir(), "aurax.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("aurax %s log:\n%s", addr, b)
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "aurax on %s never ready", addr)
	return cmd, addr
}

// startNginx runs the shipped nginx.conf with two changes only: it listens
// on a loopback port, and $aurax_backend names an upstream group of the
// given servers instead of the Docker DNS name (no Docker DNS here).
func startNginx(t *testing.T, backends ...string) string {
	t.Helper()
	nginx := tool(t, "nginx")
	b, err := os.ReadFile("nginx/nginx.conf")
	require.NoError(t, err)
	prefix := t.TempDir()
	port := freePort(t)
	conf := string(b)
	var ups strings.Builder
	ups.WriteString("http {\n    upstream aurax_test {\n")
	for _, be := range backends {
		fmt.Fprintf(&ups, "        server %s;\n", be)
	}
	ups.WriteString("    }\n")
	for old, repl := range map[string]string{
		"listen 8080;":                           fmt.Sprintf("listen 127.0.0.1:%d;", port),
		"set $aurax_backend aurax-backend:8000;": "set $aurax_backend aurax_test;",
		"pid /tmp/nginx.pid;":                    "pid " + filepath.Join(prefix, "nginx.pid") + ";",
		"/tmp/nginx-":                            prefix + "/nginx-",
		"http {\n":                               ups.String(),
	} {
		require.Contains(t, conf, old)
		conf = strings.Replace(conf, old, repl, 1)
	}
	conf = strings.ReplaceAll(conf, "/tmp/nginx-", prefix+"/nginx-")
	path := filepath.Join(prefix, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	logf, err := os.Create(filepath.Join(prefix, "nginx.log"))
	require.NoError(t, err)
	cmd := exec.Command(nginx, "-p", prefix, "-e", "stderr", "-c", path, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/nginx-health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "nginx never answered")
	return addr
}

// TestNginxInFrontOfTwoAurax runs the shipped nginx config on loopback in
// front of two real AURAX processes (each on its own fixed-latency
// Ollama-wire upstream): requests reach both, SSE streams through
// unbuffered, and SIGTERM to one replica under load fails no request.
func TestNginxInFrontOfTwoAurax(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			tool(t, "nginx")
		}
	}
	var fakes []*fakeollama.Server
	for range 2 {
		f, err := fakeollama.Start(fakeollama.Options{Latency: 50 * time.Millisecond, Tokens: 8, Interval: 60 * time.Millisecond, Models: []string{"fake"}})
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		fakes = append(fakes, f)
	}
	_, a := startAurax(t, fakes[0].URL)
	bProc, b := startAurax(t, fakes[1].URL)
	lb := "http://" + startNginx(t, a, b)
	client := &http.Client{Timeout: 30 * time.Second}

	chat := func(stream bool) (int, string, error) {
		body := fmt.Sprintf(`{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":%t}`, stream)
		resp, err := client.Post(lb+"/api/chat", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}

	t.Run("balances over both replicas", func(t *testing.T) {
		for i := range 10 {
			code, body, err := chat(false)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, code, "request %d: %s", i, body)
		}
		require.Positive(t, fakes[0].Stats().Started, "replica A got no request")
		require.Positive(t, fakes[1].Stats().Started, "replica B got no request")
		t.Logf("upstream A %d, B %d requests", fakes[0].Stats().Started, fakes[1].Stats().Started)
	})

	t.Run("SSE streams unbuffered", func(t *testing.T) {
		body := `{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":true}`
		start := time.Now()
		resp, err := client.Post(lb+"/v1/chat/completions", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Content-Type"), "text/event-stream")
		sc := bufio.NewScanner(resp.Body)
		var first time.Duration
		frames := 0
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				if frames == 0 {
					first = time.Since(start)
				}
				frames++
			}
		}
		total := time.Since(start)
		require.GreaterOrEqual(t, frames, 8)
		t.Logf("first SSE frame after %v, stream of %d frames took %v", first, frames, total)
		require.Less(t, first, total/2, "frames arrived together: nginx buffered the stream")
	})

	t.Run("SIGTERM to one replica under load fails no request", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const workers, perWorker = 6, 10
		var mu sync.Mutex
		var failures []string
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWorker {
					if ctx.Err() != nil {
						return
					}
					code, body, err := chat(i%2 == 0)
					if err != nil || code != http.StatusOK {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("worker %d request %d: %d %v %.200s", w, i, code, err, body))
						mu.Unlock()
					}
				}
			}()
		}
		require.Eventually(t, func() bool { return fakes[1].Stats().InFlight > 0 }, 5*time.Second, time.Millisecond,
			"load never reached replica B")
		require.NoError(t, bProc.Process.Signal(syscall.SIGTERM))
		wg.Wait()
		require.Empty(t, failures)
		state, err := bProc.Process.Wait()
		require.NoError(t, err)
		require.Equal(t, 0, state.ExitCode(), "replica B drained and exited 0")
		t.Logf("%d requests, 0 failed; upstream A %d, B %d", workers*perWorker, fakes[0].Stats().Started, fakes[1].Stats().Started)
	})
}
