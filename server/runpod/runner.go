package runpod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Result is a job's outcome: Output when it succeeded, else Error.
type Result struct {
	Output any
	Error  string
}

// Failed reports whether the job failed.
func (r Result) Failed() bool { return r.Error != "" }

// Runner runs job inputs against AURAX's API (in process: InProcess's
// client and InProcessURL).
type Runner struct {
	Client  *http.Client
	BaseURL string
	APIKey  string // sent as Bearer when the API requires a key
}

// maxAnswer bounds a non-streamed answer and one streamed line.
const maxAnswer = 64 << 20

// Run runs one job input. A streamed call passes each chunk to emit as it
// arrives (an emit error is reported by emit's owner, not here: the job
// goes on) and returns them all as the output.
func (r *Runner) Run(ctx context.Context, input json.RawMessage, emit func(chunk any)) Result {
	req, err := ParseInput(input)
	if err != nil {
		return Result{Error: err.Error()}
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, strings.TrimRight(r.BaseURL, "/")+req.Path, body)
	if err != nil {
		return Result{Error: "build request: " + err.Error()}
	}
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+r.APIKey)
	}
	resp, err := r.Client.Do(hr)
	if err != nil {
		return Result{Error: "call " + req.Path + ": " + err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return Result{Error: fmt.Sprintf("%d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), errorMessage(b))}
	}
	if emit == nil {
		emit = func(any) {}
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "text/event-stream"):
		return readSSE(resp.Body, emit)
	case req.Stream || strings.HasPrefix(ct, "application/x-ndjson"):
		return readNDJSON(resp.Body, emit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Result{Error: "read answer: " + err.Error()}
	}
	if !json.Valid(b) {
		return Result{Error: "answer is not JSON"}
	}
	return Result{Output: json.RawMessage(b)}
}

// errorMessage extracts the message of an OpenAI ({"error":{"message"}})
// or Ollama ({"error":"..."}) error body.
func errorMessage(b []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Error) > 0 {
		var s string
		if json.Unmarshal(e.Error, &s) == nil {
			return s
		}
		var o struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(e.Error, &o) == nil && o.Message != "" {
			return o.Message
		}
	}
	return strings.TrimSpace(string(b))
}

// streamError returns the message of a chunk that is an error event.
func streamError(b []byte) (string, bool) {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || len(e.Error) == 0 || bytes.Equal(e.Error, []byte("null")) {
		return "", false
	}
	return errorMessage(b), true
}

func newScanner(rd io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), maxAnswer)
	return sc
}

// readSSE passes each "data:" frame on, as worker-vllm does: the frame's
// text, "data: {...}\n\n", [DONE] included. Comments are dropped.
func readSSE(rd io.Reader, emit func(any)) Result {
	var chunks []any
	sc := newScanner(rd)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue // blank separators, ": keep-alive" comments, event: lines
		}
		data = strings.TrimSpace(data)
		if msg, isErr := streamError([]byte(data)); isErr {
			return Result{Error: "stream: " + msg}
		}
		frame := "data: " + data + "\n\n"
		chunks = append(chunks, frame)
		emit(frame)
	}
	if err := sc.Err(); err != nil {
		return Result{Error: "read stream: " + err.Error()}
	}
	return Result{Output: chunks}
}

// readNDJSON passes each JSON line on as an object.
func readNDJSON(rd io.Reader, emit func(any)) Result {
	var chunks []any
	sc := newScanner(rd)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return Result{Error: "stream: a line is not JSON"}
		}
		if msg, isErr := streamError(line); isErr {
			return Result{Error: "stream: " + msg}
		}
		c := json.RawMessage(bytes.Clone(line))
		chunks = append(chunks, c)
		emit(c)
	}
	if err := sc.Err(); err != nil {
		return Result{Error: "read stream: " + err.Error()}
	}
	return Result{Output: chunks}
}

// errNoJob is a job-take answer without a job.
var errNoJob = errors.New("no job")
