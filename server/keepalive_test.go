package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/stretchr/testify/require"
)

// TestStreamKeepAlive: an engine silent between chunks for longer than
// server.keep_alive gets SSE keep-alive comments sent in the silences,
// every chunk still arriving, in order, and the stream ending with
// [DONE]; the NDJSON stream of /api/chat gets no keep-alive (it has no
// comment syntax) and loses nothing either.
func TestStreamKeepAlive(t *testing.T) {
	const tokens = 3
	s, _ := newUpstreamServer(t, fakeollama.Options{Tokens: tokens, Interval: 400 * time.Millisecond, Models: []string{"fake"}},
		func(c *config.Config) { c.Server.KeepAlive = 60 * time.Millisecond })
	base, _ := serve(t, s)
	body := `{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":true}`

	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var keepAlives, content int
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == ": keep-alive":
			keepAlives++
		case strings.HasPrefix(line, "data: {"):
			var ev oaCompletion
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev), line)
			if len(ev.Choices) > 0 && ev.Choices[0].Delta != nil && ev.Choices[0].Delta.Content != nil && *ev.Choices[0].Delta.Content != "" {
				content++
			}
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, "data: [DONE]", lines[len(lines)-1])
	require.GreaterOrEqual(t, content, tokens-1, "chunks lost: %q", lines)
	// Two silences of 400 ms at 60 ms each: several keep-alives in each.
	require.GreaterOrEqual(t, keepAlives, 4, "keep-alives in the engine's silences: %q", lines)

	resp, err = http.Post(base+"/api/chat", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc = bufio.NewScanner(resp.Body)
	n, done := 0, false
	for sc.Scan() {
		var r struct{ Done bool }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "every NDJSON line is an object: %q", sc.Text())
		n++
		done = r.Done
	}
	require.NoError(t, sc.Err())
	require.True(t, done, "the NDJSON stream ends with done")
	require.GreaterOrEqual(t, n, tokens)
}
