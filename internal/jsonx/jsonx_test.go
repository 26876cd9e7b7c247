package jsonx

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ollama/ollama/api"
)

// Ollama's answers as its engines write them: chat and generate chunks,
// thinking, tool calls, logprobs, the last chunk's metrics, errors.
var answers = []string{
	`{"model":"qwen3:0.6b","created_at":"2026-12-03T08:40:00.123456789Z","message":{"role":"assistant","content":"Hel"},"done":false}`,
	`{"model":"qwen3:0.6b","created_at":"2026-12-03T08:40:00.5Z","message":{"role":"assistant","content":"","thinking":"Let me think <about> & \u2028it"},"done":false}`,
	`{"model":"m","created_at":"2026-12-03T08:40:01Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_1","function":{"index":0,"name":"get_weather","arguments":{"city":"Paris","days":3,"units":{"t":"c"},"list":[1,2.5,"x",null,true]}}}]},"done":false}`,
	`{"model":"m","created_at":"2026-12-03T08:40:02Z","message":{"role":"assistant","content":"é\n\"quoted\""},"logprobs":[{"token":"é","logprob":-0.25,"bytes":[195,169],"top_logprobs":[{"token":"e","logprob":-1.5}]}],"done":false}`,
	`{"model":"m","created_at":"2026-12-03T08:40:03Z","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":50123456,"load_duration":1234,"prompt_eval_count":12,"prompt_eval_duration":1000,"eval_count":8,"eval_duration":2000}`,
	`{"model":"m","created_at":"2026-12-03T08:40:03Z","response":"Hi","thinking":"t","done":true,"context":[1,2,3],"done_reason":"length","eval_count":1}`,
	`{"error":"model \"x\" not found, try pulling it first"}`,
	`{"model":"m","created_at":"0001-01-01T00:00:00Z","message":{"role":"assistant","content":"x","images":null},"done":false,"remote_model":"r","remote_host":"h"}`,
}

// FuzzMatchesStd: whatever encoding/json decodes, as a chat or a generate
// answer, jsonx decodes to the same value, and encodes (as a chat request
// too) to the same bytes.
func FuzzMatchesStd(f *testing.F) {
	for _, a := range answers {
		f.Add([]byte(a))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		same[api.ChatResponse](t, b)
		same[api.GenerateResponse](t, b)
		same[api.ChatRequest](t, b)
		same[api.GenerateRequest](t, b)
	})
}

func same[T any](t *testing.T, b []byte) {
	var want, got T
	if json.Unmarshal(b, &want) != nil {
		return // what encoding/json refuses, an engine does not send
	}
	if err := Unmarshal(b, &got); err != nil {
		t.Fatalf("%T: encoding/json decodes %q, jsonx does not: %v", want, b, err)
	}
	w, werr := json.Marshal(&want)
	g, _ := json.Marshal(&got)
	if werr != nil || !bytes.Equal(w, g) {
		t.Fatalf("%T: decoded differently from %q:\nencoding/json %s\njsonx         %s", want, b, w, g)
	}
	e, err := Marshal(&want)
	if err != nil || !bytes.Equal(e, w) {
		t.Fatalf("%T: encoded differently:\nencoding/json %s\njsonx         %s (%v)", want, w, e, err)
	}
	var buf, stdBuf bytes.Buffer
	_ = json.NewEncoder(&stdBuf).Encode(&want)
	if err := Encode(&buf, &want); err != nil || !bytes.Equal(buf.Bytes(), stdBuf.Bytes()) {
		t.Fatalf("%T: Encode differs:\nencoding/json %s\njsonx         %s (%v)", want, stdBuf.Bytes(), buf.Bytes(), err)
	}
}

var chunk = []byte(answers[0])

func BenchmarkDecodeChatResponse(b *testing.B) {
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r api.ChatResponse
			_ = json.Unmarshal(chunk, &r)
		}
	})
	b.Run("jsonx", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r api.ChatResponse
			_ = Unmarshal(chunk, &r)
		}
	})
}

// FuzzOllamaMatchesStd: UnmarshalChatResponse and UnmarshalChatRequest
// decode what encoding/json decodes (through api.Message's UnmarshalJSON)
// to the same value, and refuse what it refuses.
func FuzzOllamaMatchesStd(f *testing.F) {
	for _, a := range answers {
		f.Add([]byte(a))
	}
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"USER","content":"hi"},{"role":"Assistant","content":"x","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]}],"stream":false}`,
		`{"model":"m","messages":[]}`, `{"model":"m","messages":null}`, `{"messages":[null,{"role":"user"}]}`,
		`{"message":null,"done":true}`, `{"MESSAGE":{"ROLE":"Tool","Content":"c"}}`, `{"message":{"role":"user"},"message":{"content":"x"}}`,
		`{"messages":[{"role":"user","images":["aGk="]}]}`, `{"messages":[{"role":"user","images":["not base64"]}]}`,
		`{"messages":{"role":"user"}}`, `{"message":[1]}`, "{\"message\":{\"role\":\"\xff\xfeA\"}}", `{"message":{"role":"\u0130"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAs(t, b, UnmarshalChatResponse)
		sameAs(t, b, UnmarshalChatRequest)
	})
}

func sameAs[T any](t *testing.T, b []byte, decode func([]byte, *T) error) {
	var want, got T
	werr := json.Unmarshal(b, &want)
	gerr := decode(b, &got)
	if werr != nil {
		if gerr == nil {
			t.Fatalf("%T: encoding/json refuses %q (%v), jsonx decodes it", want, b, werr)
		}
		return
	}
	if gerr != nil {
		t.Fatalf("%T: encoding/json decodes %q, jsonx does not: %v", want, b, gerr)
	}
	if !reflect.DeepEqual(want, got) {
		w, _ := json.Marshal(&want)
		g, _ := json.Marshal(&got)
		t.Fatalf("%T: decoded differently from %q:\nencoding/json %s\njsonx         %s", want, b, w, g)
	}
}

func BenchmarkDecodeChatResponseMessage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var r api.ChatResponse
		_ = UnmarshalChatResponse(chunk, &r)
	}
}
