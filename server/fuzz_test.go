package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// fuzzEndpoint feeds arbitrary bodies to one endpoint over an in-memory
// backend: every answer must be 200 or a 400 in the endpoint's wire format,
// never a 5xx, a panic or an undecodable error.
func fuzzEndpoint(f *testing.F, path string, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	s, _ := newTestServer(f, &stubBackend{}, testConfig())
	f.Fuzz(func(t *testing.T, body string) {
		resp, out, err := rawReq(s, "POST", path, body)
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		switch resp.StatusCode {
		case 200:
			return
		case 400:
		default:
			t.Fatalf("POST %s %q = %d %s; want 200 or 400", path, body, resp.StatusCode, out)
		}
		if strings.HasPrefix(path, "/api/") {
			var e struct{ Error string }
			if json.Unmarshal([]byte(out), &e) != nil || e.Error == "" {
				t.Fatalf("Ollama-shape error expected, got %s", out)
			}
			return
		}
		var e struct {
			Error struct{ Message, Type string }
		}
		if json.Unmarshal([]byte(out), &e) != nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Fatalf("OpenAI-shape error expected, got %s", out)
		}
	})
}

// seeds are each inference endpoint's fuzz seeds (FuzzDecodeHot takes
// them all).
var seeds = map[string][]string{
	"/v1/chat/completions": {
		chatBody,
		`{"model":"fake","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"stream":false}`,
		`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"2"}],"stream":false}`,
		`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"type":"integer"}}}}}],"stop":["a","b"],"temperature":0.5,"max_tokens":3,"response_format":{"type":"json_object"}}`,
		`{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object"}}},"reasoning_effort":"none"}`,
		`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`,
		`{"messages":[{"role":"user","content":"x"}],"tool_choice":"none","logprobs":true,"top_logprobs":3,"n":2,"user":"u","metadata":{"a":"b"},"store":true,"service_tier":"flex"}`,
		`{"messages":[{"role":"user","content":"x"}],"n":3,"stream":true,"seed":4,"stream_options":{"include_usage":true}}`,
		`[]`, `null`, `{"messages":{}}`,
	},
	"/v1/completions": {`{"model":"fake","prompt":"x"}`, `{"prompt":["a"],"max_tokens":2,"stop":"z"}`, `{"prompt":["a","b"]}`, `{"prompt":"a","logprobs":3}`},
	"/v1/embeddings":  {`{"model":"fake","input":"x"}`, `{"input":["a","b"],"encoding_format":"base64"}`, `{"input":[[1,2]]}`},
	"/api/chat": {chatBody, `{"model":"fake","messages":[{"role":"user","content":"x","images":["AAAA"]}],"stream":false,"think":"high","options":{"num_predict":3}}`,
		`{"model":"fake","messages":[],"format":"json","stream":false}`},
	"/api/generate":   {`{"model":"fake","prompt":"x","stream":false}`, `{"model":"fake","prompt":"x","stream":false,"think":true,"keep_alive":"5m"}`},
	"/api/embed":      {`{"model":"fake","input":"x"}`, `{"model":"fake","input":["a","b"],"truncate":true}`},
	"/api/embeddings": {`{"model":"fake","prompt":"x"}`, `{"model":"fake","prompt":""}`, `{"model":"fake"}`},
}

func FuzzOpenAIChat(f *testing.F) {
	fuzzEndpoint(f, "/v1/chat/completions", seeds["/v1/chat/completions"]...)
}

func FuzzOpenAICompletions(f *testing.F) {
	fuzzEndpoint(f, "/v1/completions", seeds["/v1/completions"]...)
}

func FuzzOpenAIEmbeddings(f *testing.F) {
	fuzzEndpoint(f, "/v1/embeddings", seeds["/v1/embeddings"]...)
}

func FuzzOllamaChat(f *testing.F) { fuzzEndpoint(f, "/api/chat", seeds["/api/chat"]...) }

func FuzzOllamaGenerate(f *testing.F) { fuzzEndpoint(f, "/api/generate", seeds["/api/generate"]...) }

func FuzzOllamaEmbed(f *testing.F) { fuzzEndpoint(f, "/api/embed", seeds["/api/embed"]...) }

func FuzzOllamaEmbeddings(f *testing.F) {
	fuzzEndpoint(f, "/api/embeddings", seeds["/api/embeddings"]...)
}
