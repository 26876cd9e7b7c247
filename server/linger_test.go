package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/internal/testenv"
)

// writeThenRead is a client like Python's urllib or httpx: it writes the
// whole request, body included, and only then reads the answer.
func writeThenRead(t *testing.T, addr, head string, body io.Reader) (*http.Response, string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	if _, err := io.WriteString(conn, head); err != nil {
		return nil, "", fmt.Errorf("write head: %w", err)
	}
	if _, err := io.Copy(conn, body); err != nil {
		return nil, "", fmt.Errorf("write body: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, "", fmt.Errorf("read: %w", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, string(b), fmt.Errorf("read body: %w", err)
	}
	return resp, string(b), nil
}

func oversized(n int) io.Reader { return io.LimitReader(zeros{}, int64(n)) }

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestTooLargeIsReadable: a body over server.body_limit is answered 413,
// and a client that writes its whole 16 MiB body before it reads still gets
// that answer (the connection reads and discards the rest, then closes),
// with a declared length or chunked; without lingering the same client
// gets a reset instead.
func TestTooLargeIsReadable(t *testing.T) {
	const size = 16 << 20
	serveWith := func(linger time.Duration) string {
		cfg := testConfig()
		cfg.Server.BodyLimit = 64 << 10
		cfg.Server.Linger = linger
		s, _ := newTestServer(t, &stubBackend{}, cfg)
		base, _ := serve(t, s)
		return strings.TrimPrefix(base, "http://")
	}
	addr := serveWith(5 * time.Second)
	for _, tc := range []struct{ name, head string }{
		{"content-length", fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)},
		{"chunked", "POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := oversized(size)
			if strings.Contains(tc.head, "chunked") {
				body = io.MultiReader(chunked(oversized(size)), strings.NewReader("0\r\n\r\n"))
			}
			start := time.Now()
			resp, text, err := writeThenRead(t, addr, tc.head, body)
			require.NoError(t, err)
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
			require.Contains(t, text, "request body too large")
			require.Contains(t, text, "65536")
			require.True(t, resp.Close, "Connection: close")
			t.Logf("%s: 16 MiB written, 413 read in %v", tc.name, time.Since(start).Round(time.Millisecond))
		})
	}

	t.Run("a normal request on the same server", func(t *testing.T) {
		resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("without lingering the client gets a reset", func(t *testing.T) {
		addr := serveWith(0)
		head := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		_, _, err := writeThenRead(t, addr, head, oversized(size))
		require.Error(t, err, "what clients that write first saw before the lingering close")
	})
}

// chunked frames r's bytes as HTTP/1.1 chunks (without the last one).
func chunked(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				fmt.Fprintf(pw, "%x\r\n", n)
				pw.Write(buf[:n])
				io.WriteString(pw, "\r\n")
			}
			if err != nil {
				pw.Close()
				return
			}
		}
	}()
	return pr
}

// TestLingerIsBounded: a client that declares a huge body and then stalls
// still gets its 413, and the connection closes once server.linger passed.
func TestLingerIsBounded(t *testing.T) {
	cfg := testConfig()
	cfg.Server.BodyLimit = 1024
	cfg.Server.Linger = 300 * time.Millisecond
	s, _ := newTestServer(t, &stubBackend{}, cfg)
	base, _ := serve(t, s)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n"+strings.Repeat("x", 4096))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	all, err := io.ReadAll(conn)
	require.NoError(t, err, "the answer, then the server's half-close")
	require.Contains(t, string(all), "413")
	// The server still reads (and discards) what the client sends, until
	// server.linger passed; then it closes and writes fail.
	for {
		if _, err := conn.Write(make([]byte, 32<<10)); err != nil {
			break
		}
		require.Less(t, time.Since(start), 3*time.Second, "the linger never ended")
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 250*time.Millisecond, "it lingered")
	t.Logf("closed %v after the 413", took.Round(time.Millisecond))
}

// TestAccessLog: one line per request with method, route, status,
// duration, model, engine, request id and bytes, streamed or not; never a
// key nor a prompt; server.access_log false turns it off.
func TestAccessLog(t *testing.T) {
	var buf testenv.SyncBuffer
	cfg := testConfig()
	cfg.Auth.APIKeys = []string{"sekret-key"}
	cfg.Server.BodyLimit = 2048
	s, _ := newTestServer(t, &stubBackend{}, cfg, withLog(&buf))
	base, _ := serve(t, s)
	auth := []string{"Authorization", "Bearer sekret-key"}
	prompt := `{"model":"fake","messages":[{"role":"user","content":"the secret prompt"}],"stream":%s}`
	for _, r := range []struct {
		path, body string
		header     []string
	}{
		{"/v1/chat/completions", fmt.Sprintf(prompt, "false"), auth},
		{"/v1/chat/completions", fmt.Sprintf(prompt, "true"), append(auth, "X-Request-Id", "client-id-7")},
		{"/api/chat", fmt.Sprintf(prompt, "true"), auth},
		{"/api/tags", "", auth},
		{"/v1/chat/completions", fmt.Sprintf(prompt, "false"), []string{"Authorization", "Bearer wrong-key"}},
		{"/v1/nowhere", "{}", auth},
		{"/api/chat", strings.Repeat("x", 4096), auth},
	} {
		method := "POST"
		if r.body == "" {
			method = "GET"
		}
		req, _ := http.NewRequest(method, base+r.path, strings.NewReader(r.body))
		for i := 0; i+1 < len(r.header); i += 2 {
			req.Header.Set(r.header[i], r.header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var lines []map[string]any
	require.Eventually(t, func() bool {
		lines = accessLines(t, buf.String())
		return len(lines) == 7
	}, 5*time.Second, 10*time.Millisecond, "one line per request: %s", buf.String())
	require.NotContains(t, buf.String(), "sekret")
	require.NotContains(t, buf.String(), "wrong-key")
	require.NotContains(t, buf.String(), "secret prompt")

	byRoute := map[string][]map[string]any{}
	for _, l := range lines {
		for _, k := range []string{"method", "route", "status", "duration", "model", "engine", "request_id", "bytes"} {
			require.Contains(t, l, k, "line %v", l)
		}
		byRoute[l["route"].(string)] = append(byRoute[l["route"].(string)], l)
	}
	chat := byRoute["/v1/chat/completions"]
	require.Len(t, chat, 3)
	var streamed map[string]any
	for _, l := range chat {
		if l["request_id"] == "client-id-7" {
			streamed = l
		}
	}
	require.NotNil(t, streamed, "the client's request id")
	require.EqualValues(t, 200, streamed["status"])
	require.Equal(t, "fake", streamed["model"])
	require.Equal(t, "127.0.0.1:11434", streamed["engine"], "the engine that served it")
	require.Greater(t, streamed["bytes"].(float64), 100.0, "the streamed body")
	statuses := map[float64]bool{}
	for _, l := range chat {
		statuses[l["status"].(float64)] = true
	}
	require.Equal(t, map[float64]bool{200: true, 401: true}, statuses)
	require.Len(t, byRoute["/api/chat"], 2)
	require.Len(t, byRoute["/api/tags"], 1)
	require.Equal(t, "", byRoute["/api/tags"][0]["engine"])
	require.EqualValues(t, 404, byRoute["/v1/nowhere"][0]["status"])
	var tooBig bool
	for _, l := range byRoute["/api/chat"] {
		tooBig = tooBig || l["status"].(float64) == 413
	}
	require.True(t, tooBig)

	var quiet testenv.SyncBuffer
	cfg.Server.AccessLog = false
	s2, _ := newTestServer(t, &stubBackend{}, cfg, withLog(&quiet))
	resp, _ := doReq(t, s2, "POST", "/v1/chat/completions", fmt.Sprintf(prompt, "false"), auth...)
	require.Equal(t, 200, resp.StatusCode)
	require.Empty(t, accessLines(t, quiet.String()))
}

func withLog(w io.Writer) func(*Options) {
	return func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(w, nil)) }
}

func accessLines(t *testing.T, out string) []map[string]any {
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["component"] == "access" && m["route"] != "/health/ready" {
			lines = append(lines, m)
		}
	}
	return lines
}
