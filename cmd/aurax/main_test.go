package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary stand in for aurax: with AURAX_RUN_MAIN set
// it runs main's logic on its arguments and exits.
func TestMain(m *testing.M) {
	if os.Getenv("AURAX_RUN_MAIN") != "" {
		os.Exit(runMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// aurax starts the command as a child process.
func aurax(t *testing.T, env []string, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "AURAX_RUN_MAIN=1"), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"version"}, 0, "aurax "},
		{[]string{"help"}, 0, "healthcheck"},
		{[]string{"nonsense"}, 2, "unknown command"},
		{[]string{"serve", "--help"}, 0, "AURAX_QUEUE_MAX_INFLIGHT"},
		{[]string{"serve", "--config", "/no/such/file.yaml"}, 1, "no such file"},
		{[]string{"healthcheck", "--url", "http://127.0.0.1:1/health/ready", "--timeout", "1s"}, 1, "not healthy"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd, out := aurax(t, nil, tc.args...)
			err := cmd.Wait()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			require.Equalf(t, tc.code, code, "output: %s", out)
			require.Contains(t, out.String(), tc.want)
		})
	}
}

// TestServeDrainsOnSIGTERM: the real process, on SIGTERM, turns not ready,
// lets the stream in flight finish, and exits 0; healthcheck follows
// readiness.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	up, err := fakeollama.Start(fakeollama.Options{Tokens: 60, Interval: 10 * time.Millisecond, Models: []string{"fake"}})
	require.NoError(t, err)
	defer up.Close()
	addr := freeAddr(t)
	env := []string{"AURAX_SERVER_LISTEN=" + addr, "AURAX_OLLAMA_URL=" + up.URL, "AURAX_MODELS_DEFAULT=fake",
		"AURAX_MODELS_EMBEDDING=", "AURAX_SERVER_DRAIN_TIMEOUT=10s", "AURAX_RAG_PATH=" + t.TempDir() + "/rag.db"}
	cmd, out := aurax(t, env, "serve")
	base := "http://" + addr
	require.Eventuallyf(t, func() bool {
		resp, err := http.Get(base + "/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond, "never ready: %s", out)

	hc, hout := aurax(t, env, "healthcheck")
	require.NoErrorf(t, hc.Wait(), "healthcheck on a ready server: %s", hout)

	resp, err := http.Post(base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	_, err = br.ReadString('\n')
	require.NoError(t, err)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(rest), "data: [DONE]\n\n"), "the stream in flight must finish: %q", rest)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoErrorf(t, err, "exit status after drain; output: %s", out)
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit after SIGTERM; output: %s", out)
	}
	require.Contains(t, out.String(), "draining")
}
