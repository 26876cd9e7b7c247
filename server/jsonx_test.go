package server

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/aurax/aurax/internal/jsonx"
	"github.com/aurax/aurax/rag"
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
