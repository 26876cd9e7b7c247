package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aurax/aurax/internal/jsonx"
	"github.com/aurax/aurax/rag"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// TestAnswersEncodeAsStd: the OpenAI answers and chunks, which jsonx now
// encodes, come out byte for byte as encoding/json wrote them: nulls that
// must be there (logprobs, finish_reason, refusal), omitempty and
// omitzero fields left out, citations, usage, tool calls, escaping.
func TestAnswersEncodeAsStd(t *testing.T) {
	stop, text := "stop", "Hello <b>&</b> \u2028 é"
	empty := ""
	values := []any{
		&oaCompletion{ID: "chatcmpl-1", Object: "chat.completion", Created: 1, Model: "m",
			Choices: []oaChoice{{Message: &oaRespMessage{Role: "assistant", Content: &text, Refusal: jsonNull}, FinishReason: &stop}},
			Usage:   &oaUsage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8}},
		&oaCompletion{ID: "chatcmpl-2", Object: "chat.completion.chunk", Model: "m",
			Choices: []oaChoice{{Delta: &oaRespMessage{Role: "assistant", Content: &empty, Refusal: jsonNull}}}},
		&oaCompletion{ID: "chatcmpl-3", Object: "chat.completion.chunk", Model: "m", Choices: []oaChoice{},
			Citations: []rag.Citation{{}}},
		&oaCompletion{ID: "cmpl-4", Object: "text_completion", Model: "m",
			Choices: []oaChoice{{Text: &text, FinishReason: &stop, Delta: &oaRespMessage{
				ReasoningContent: "r", Reasoning: "r", ToolCalls: []oaToolCall{{}}}}}},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		require.NoError(t, err)
		got, err := jsonx.Marshal(v)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		var w, g bytes.Buffer
		require.NoError(t, json.NewEncoder(&w).Encode(v))
		require.NoError(t, jsonx.Encode(&g, v))
		require.Equal(t, w.String(), g.String())
	}
}

// FuzzDecodeHot: whatever jsonx decodes as an inference request (the
// types decodeHot decodes, and decodeChat's chat requests), encoding/json
// decodes too, to the same value;
// what jsonx refuses, decodeHot hands to encoding/json, so no body gets
// another answer than it did.
func FuzzDecodeHot(f *testing.F) {
	for _, ss := range seeds {
		for _, s := range ss {
			f.Add([]byte(s))
		}
	}
	for _, s := range []string{ // where decoders are known to part: UTF-8, numbers, case, duplicates, trailing bytes
		"{\"model\":\"a\xff\xfeb\",\"prompt\":\"\\ud800x\"}", `{"MODEL":"m","Prompt":"p","model":"n"}`,
		`{"max_tokens":1e2}`, `{"max_tokens":99999999999999999999}`, `{"n":-0}`, `{"temperature":1E400}`,
		`{"model":"m"} x`, `{"model":"m"}{}`, ` {"stream":true} `, `{"options":{"a":1.0,"b":[1,{"c":null}]}}`,
		`{"messages":[{"role":"user","content":"x"},]}`, `{"keep_alive":"5m","truncate":"yes"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameRequest[oaChatRequest](t, b)
		sameRequest[oaCompletionRequest](t, b)
		sameRequest[oaEmbeddingRequest](t, b)
		sameRequest[api.ChatRequest](t, b)
		sameRequest[api.GenerateRequest](t, b)
		sameRequest[api.EmbedRequest](t, b)
		sameRequest[api.EmbeddingRequest](t, b)
		sameDecoded(t, b, jsonx.UnmarshalChatRequest) // decodeChat's
	})
}

func sameRequest[T any](t *testing.T, b []byte) {
	sameDecoded(t, b, func(b []byte, v *T) error { return jsonx.Unmarshal(b, v) })
}

func sameDecoded[T any](t *testing.T, b []byte, fast func([]byte, *T) error) {
	var got, want T
	if fast(b, &got) != nil {
		return // encoding/json decides
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%T: jsonx decodes %q, encoding/json refuses it: %v", want, b, err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(&got)
		w, _ := json.Marshal(&want)
		t.Fatalf("%T: %q decoded differently:\nencoding/json %s\njsonx         %s", want, b, w, g)
	}
}

// FuzzPlainString: a message content plainString takes as it is,
// encoding/json decodes to the same string.
func FuzzPlainString(f *testing.F) {
	for _, s := range []string{`"Hello, how are you?"`, `""`, `"`, `"a\"b"`, `"a\nb"`, "\"a\nb\"", "\"\xff\"", `"日本語"`, "\"\x00\"", `"a"b"`, `x"a"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := plainString(b)
		if !ok {
			return // encoding/json decodes it
		}
		var want string
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("plainString takes %q, encoding/json refuses it: %v", b, err)
		}
		if got != want {
			t.Fatalf("%q: plainString %q, encoding/json %q", b, got, want)
		}
	})
}
