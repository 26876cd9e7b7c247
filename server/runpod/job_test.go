package runpod

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseInput(t *testing.T) {
	tests := []struct {
		in      string
		method  string
		path    string
		stream  bool
		wantErr string
	}{
		{`{"openai_route":"/v1/chat/completions","openai_input":{"messages":[]}}`, "POST", "/v1/chat/completions", false, ""},
		{`{"openai_route":"/v1/chat/completions","openai_input":{"stream":true}}`, "POST", "/v1/chat/completions", true, ""},
		{`{"openai_route":"/v1/models"}`, "GET", "/v1/models", false, ""},
		{`{"ollama_route":"/api/chat","ollama_input":{"model":"m"}}`, "POST", "/api/chat", true, ""},
		{`{"ollama_route":"/api/chat","ollama_input":{"stream":false}}`, "POST", "/api/chat", false, ""},
		{`{"ollama_route":"/api/embed","ollama_input":{"input":"x"}}`, "POST", "/api/embed", false, ""},
		{``, "", "", false, "no input"},
		{`null`, "", "", false, "no input"},
		{`"hello"`, "", "", false, "not an object"},
		{`{"prompt":"hi"}`, "", "", false, "needs openai_route"},
		{`{"openai_route":"/v1/chat/completions"}`, "", "", false, "openai_input is required"},
		{`{"openai_route":"/v1/chat/completions","openai_input":[1]}`, "", "", false, "must be a JSON object"},
		{`{"openai_route":"/v1/chat/completions","openai_input":{"stream":"yes"}}`, "", "", false, "stream must be a boolean"},
		{`{"openai_route":"/../admin","openai_input":{}}`, "", "", false, "unknown openai_route"},
		{`{"ollama_route":"/api/pull","ollama_input":{}}`, "", "", false, "unknown ollama_route"},
		{`{"openai_route":"/v1/models","ollama_route":"/api/tags"}`, "", "", false, "both"},
		{`{"openai_route":5}`, "", "", false, "not an object"},
	}
	for _, tt := range tests {
		r, err := ParseInput(json.RawMessage(tt.in))
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, "ParseInput(%s)", tt.in)
			require.True(t, errors.As(err, new(*InputError)))
			continue
		}
		require.NoError(t, err, "ParseInput(%s)", tt.in)
		require.Equal(t, [3]any{tt.method, tt.path, tt.stream}, [3]any{r.Method, r.Path, r.Stream}, "ParseInput(%s)", tt.in)
	}
}

func TestDecodeJob(t *testing.T) {
	j, err := DecodeJob([]byte(`{"id":"a1","input":{"x":1}}`))
	require.NoError(t, err)
	require.Equal(t, "a1", j.ID)
	j, err = DecodeJob([]byte(`{"id":"a2"}`))
	require.NoError(t, err, "a job without input is answered with an error, not dropped")
	require.Empty(t, j.Input)
	for _, bad := range []string{``, `{}`, `{"id":""}`, `{"id":7}`, `[]`, `{"id":"a"} {"id":"b"}`} {
		_, err := DecodeJob([]byte(bad))
		require.Error(t, err, "DecodeJob(%q)", bad)
	}
}

func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(`{"id":"a1","input":{"openai_route":"/v1/chat/completions","openai_input":{"messages":[],"stream":true}}}`))
	f.Add([]byte(`{"id":"a2","input":{"ollama_route":"/api/chat","ollama_input":{"stream":null}}}`))
	f.Add([]byte(`{"id":"a3","input":null}`))
	f.Add([]byte(`{"id":"a4","input":{"openai_route":"/v1/models","openai_input":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := DecodeJob(b)
		if err != nil {
			return
		}
		if j.ID == "" {
			t.Fatalf("DecodeJob(%q): empty id accepted", b)
		}
		r, err := ParseInput(j.Input)
		if err != nil {
			if !errors.As(err, new(*InputError)) {
				t.Fatalf("ParseInput(%q): untyped error %v", j.Input, err)
			}
			return
		}
		if routes[r.Format][r.Path] != r.Method {
			t.Fatalf("ParseInput(%q) = %+v: a route not in the table", j.Input, r)
		}
		if r.Method == "POST" && !json.Valid(r.Body) {
			t.Fatalf("ParseInput(%q): body %q is not JSON", j.Input, r.Body)
		}
	})
}
