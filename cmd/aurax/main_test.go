package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/aurax/aurax/internal/sysmon"
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

// run runs the command to its end: its exit status, stdout and stderr.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "AURAX_RUN_MAIN=1", "AURAX_CONFIG=")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, out.String(), errOut.String()
}

// TestCommands pins the command line's contract: exit status 0 on success
// and on help asked for (on stdout), 1 when the command fails, 2 for a
// command line it cannot run (on stderr, naming what is wrong).
func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // substrings; "" means empty
	}{
		{[]string{"version"}, 0, "aurax ", ""},
		{[]string{"--version"}, 0, "aurax ", ""},
		{[]string{"-version"}, 0, "aurax ", ""},
		{[]string{"help"}, 0, "healthcheck", ""},
		{[]string{"-h"}, 0, "usage: aurax <command>", ""},
		{[]string{"--help"}, 0, "commands:", ""},
		{[]string{"help", "ingest"}, 0, "usage: aurax ingest [flags] PATH...", ""},
		{[]string{"serve", "--help"}, 0, "AURAX_QUEUE_MAX_INFLIGHT", ""},
		{[]string{"serve", "-h"}, 0, "usage: aurax serve [flags]", ""},
		{[]string{"nonsense"}, 2, "", `aurax: unknown command "nonsense"`},
		{[]string{"help", "nonsense"}, 2, "", `unknown command "nonsense"`},
		{[]string{"serve", "config.yaml"}, 2, "", `aurax serve: unexpected argument "config.yaml" (did you mean --config config.yaml?)`},
		{[]string{"healthcheck", "a", "b"}, 2, "", `aurax healthcheck: unexpected arguments "a" "b"`},
		{[]string{"version", "now"}, 2, "", `aurax version: unexpected argument "now"`},
		{[]string{"testmodel", "out"}, 2, "", `aurax testmodel: unexpected argument "out"`},
		{[]string{"serve", "--bogus"}, 2, "", "aurax serve: flag provided but not defined: -bogus\nusage: aurax serve"},
		{[]string{"healthcheck", "--timeout", "soon"}, 2, "", `invalid value "soon" for flag -timeout`},
		{[]string{"simulate"}, 2, "", "aurax simulate: --trace is required"},
		{[]string{"ingest", "--collection", "c"}, 2, "", "no paths to ingest"},
		{[]string{"search", "--collection", "c"}, 2, "", "no query"},
		{[]string{"serve", "--config", "/no/such/file.yaml"}, 1, "", "no such file"},
		{[]string{"healthcheck", "--url", "http://127.0.0.1:1/health/ready", "--timeout", "1s"}, 1, "", "not healthy"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, tc.args...)
			require.Equalf(t, tc.code, code, "stdout: %s\nstderr: %s", stdout, stderr)
			for _, c := range []struct{ name, got, want string }{{"stdout", stdout, tc.stdout}, {"stderr", stderr, tc.stderr}} {
				if c.want == "" {
					require.Emptyf(t, c.got, "%s", c.name)
				} else {
					require.Containsf(t, c.got, c.want, "%s", c.name)
				}
			}
		})
	}
}

// TestUsage checks every subcommand's help: asked for, it goes to stdout,
// starts "usage: aurax NAME", and fits in 100 columns (the settings table
// wraps its help under each setting).
func TestUsage(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := run(t, name, "--help")
			require.Equal(t, 0, code, stderr)
			require.Empty(t, stderr)
			require.True(t, strings.HasPrefix(stdout, "usage: aurax "+name), "%s --help starts %q", name, strings.SplitN(stdout, "\n", 2)[0])
			require.NotContains(t, stdout, "\t", "tabs have no width to count")
			for i, line := range strings.Split(stdout, "\n") {
				require.LessOrEqualf(t, utf8.RuneCountInString(line), 100, "%s --help line %d: %q", name, i+1, line)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		text  string
		width int
		want  []string
	}{
		{"", 10, nil},
		{"one two three", 7, []string{"one two", "three"}},
		{"  spaced   out  ", 20, []string{"spaced out"}},
		{"abcdefghij k", 4, []string{"abcd", "efgh", "ij k"}},
		{"é è ê ë", 3, []string{"é è", "ê ë"}},
	} {
		require.Equalf(t, tc.want, wrap(tc.text, tc.width), "wrap(%q, %d)", tc.text, tc.width)
	}
}

// TestServeDrainsOnSIGTERM: the real process (re-executed in place with
// the sysmon setting), on SIGTERM, turns not ready, lets the stream in
// flight finish, and exits 0; healthcheck follows readiness.
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
	if _, ours := sysmon.Env(os.Environ()); ours { // the process serving is the one started, re-executed with the setting
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
		require.NoError(t, err)
		require.Containsf(t, strings.Split(string(environ), "\x00"), "GODEBUG="+sysmon.Setting, "the serving process's environment")
	}

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
