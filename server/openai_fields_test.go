package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"
)

// scriptBackend is a stubBackend whose chat answer is resp, sent as one
// content chunk and a final one when streaming, and that records what it
// was asked.
type scriptBackend struct {
	stubBackend
	resp api.ChatResponse

	mu   sync.Mutex
	reqs []api.ChatRequest
}

func (b *scriptBackend) Chat(ctx context.Context, req *api.ChatRequest, fn func(*api.ChatResponse) error) error {
	b.mu.Lock()
	b.reqs = append(b.reqs, *req)
	b.mu.Unlock()
	r := b.resp
	if req.Stream != nil && *req.Stream {
		part := r
		part.Done, part.DoneReason = false, ""
		if err := fn(&part); err != nil {
			return err
		}
		r.Message = api.Message{Role: "assistant"}
		r.Logprobs = nil
	}
	r.Done, r.DoneReason = true, "stop"
	r.PromptEvalCount, r.EvalCount = 3, 2
	return fn(&r)
}

func (b *scriptBackend) last() api.ChatRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reqs[len(b.reqs)-1]
}

func (b *scriptBackend) toolNames() []string {
	var names []string
	for _, t := range b.last().Tools {
		names = append(names, t.Function.Name)
	}
	return names
}

func sdk(base string) openai.Client {
	return openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
}

func tool(name string) openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: name,
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"x": map[string]any{"type": "integer"}}}})
}

// TestToolChoice: the tools Ollama gets follow tool_choice (none: none at
// all; a name or allowed_tools: only those; auto and required: all), and
// parallel_tool_calls false keeps one call of several, streamed or not.
func TestToolChoice(t *testing.T) {
	b := &scriptBackend{resp: api.ChatResponse{Message: api.Message{Role: "assistant", ToolCalls: []api.ToolCall{
		{Function: api.ToolCallFunction{Name: "f", Arguments: api.NewToolCallFunctionArguments()}},
		{Function: api.ToolCallFunction{Name: "g", Arguments: api.NewToolCallFunctionArguments()}},
	}}}}
	s, _ := newTestServer(t, b, testConfig())
	base, _ := serve(t, s)
	client := sdk(base)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "fake", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
		Tools: []openai.ChatCompletionToolUnionParam{tool("f"), tool("g"), tool("h")}}

	for _, tc := range []struct {
		name   string
		choice openai.ChatCompletionToolChoiceOptionUnionParam
		want   []string
	}{
		{"absent", openai.ChatCompletionToolChoiceOptionUnionParam{}, []string{"f", "g", "h"}},
		{"auto", openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")}, []string{"f", "g", "h"}},
		{"required", openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}, []string{"f", "g", "h"}},
		{"none", openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}, nil},
		{"named", openai.ChatCompletionToolChoiceOptionUnionParam{OfFunctionToolChoice: &openai.ChatCompletionNamedToolChoiceParam{
			Function: openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "g"}}}, []string{"g"}},
		{"allowed_tools", openai.ChatCompletionToolChoiceOptionUnionParam{OfAllowedTools: &openai.ChatCompletionAllowedToolChoiceParam{
			AllowedTools: openai.ChatCompletionAllowedToolsParam{Mode: "required", Tools: []map[string]any{
				{"type": "function", "function": map[string]any{"name": "f"}}, {"type": "function", "function": map[string]any{"name": "h"}}}}}}, []string{"f", "h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params
			p.ToolChoice = tc.choice
			_, err := client.Chat.Completions.New(ctx, p)
			require.NoError(t, err)
			require.Equal(t, tc.want, b.toolNames())
		})
	}

	t.Run("parallel_tool_calls", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, params)
		require.NoError(t, err)
		require.Len(t, resp.Choices[0].Message.ToolCalls, 2, "several calls when parallel calls are allowed")
		p := params
		p.ParallelToolCalls = openai.Bool(false)
		resp, err = client.Chat.Completions.New(ctx, p)
		require.NoError(t, err)
		require.Len(t, resp.Choices[0].Message.ToolCalls, 1)
		require.Equal(t, "tool_calls", resp.Choices[0].FinishReason)

		stream := client.Chat.Completions.NewStreaming(ctx, p)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		require.NoError(t, stream.Err())
		require.Len(t, acc.Choices[0].Message.ToolCalls, 1)
		require.Equal(t, "f", acc.Choices[0].Message.ToolCalls[0].Function.Name)
	})
}

// TestResponseFields: messages carry refusal null; thinking goes out as
// both reasoning_content and reasoning, streamed or not; the fields OpenAI
// clients send and Ollama has no use for are accepted.
func TestResponseFields(t *testing.T) {
	b := &scriptBackend{resp: api.ChatResponse{Message: api.Message{Role: "assistant", Content: "hi", Thinking: "hmm"}}}
	s, _ := newTestServer(t, b, testConfig())
	base, _ := serve(t, s)
	client := sdk(base)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "fake", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
		User: openai.String("u-1"), Metadata: shared.Metadata{"team": "a"}, Store: openai.Bool(true),
		ServiceTier: openai.ChatCompletionNewParamsServiceTierFlex}
	resp, err := client.Chat.Completions.New(ctx, params)
	require.NoError(t, err)
	msg := resp.Choices[0].Message
	require.True(t, msg.JSON.Refusal.Valid() || msg.JSON.Refusal.Raw() == "null", "refusal present")
	require.Equal(t, "null", msg.JSON.Refusal.Raw())
	require.Equal(t, `"hmm"`, msg.JSON.ExtraFields["reasoning_content"].Raw())
	require.Equal(t, `"hmm"`, msg.JSON.ExtraFields["reasoning"].Raw())
	require.Equal(t, "null", resp.Choices[0].JSON.Logprobs.Raw(), "logprobs null when not asked for")

	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var first openai.ChatCompletionChunk
	for n := 0; stream.Next(); n++ {
		if n == 0 {
			first = stream.Current()
		}
	}
	require.NoError(t, stream.Err())
	d := first.Choices[0].Delta
	require.Equal(t, "null", d.JSON.Refusal.Raw(), "the first delta has refusal null")
	require.Equal(t, `"hmm"`, d.JSON.ExtraFields["reasoning_content"].Raw())
	require.Equal(t, `"hmm"`, d.JSON.ExtraFields["reasoning"].Raw())
}

// TestLogprobsShape maps Ollama's logprobs to OpenAI's: every token with
// bytes and its alternatives, streamed chunk by chunk or at once.
func TestLogprobsShape(t *testing.T) {
	lp := []api.Logprob{
		{TokenLogprob: api.TokenLogprob{Token: "h", Logprob: -0.5, Bytes: []int{104}}, TopLogprobs: []api.TokenLogprob{{Token: "h", Logprob: -0.5}, {Token: "y", Logprob: -1.2}}},
		{TokenLogprob: api.TokenLogprob{Token: "i", Logprob: -0.1}, TopLogprobs: []api.TokenLogprob{{Token: "i", Logprob: -0.1}, {Token: "o", Logprob: -2}}},
	}
	b := &scriptBackend{resp: api.ChatResponse{Message: api.Message{Role: "assistant", Content: "hi"}, Logprobs: lp}}
	s, _ := newTestServer(t, b, testConfig())
	base, _ := serve(t, s)
	client := sdk(base)
	params := openai.ChatCompletionNewParams{Model: "fake", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
		Logprobs: openai.Bool(true), TopLogprobs: openai.Int(2)}
	resp, err := client.Chat.Completions.New(context.Background(), params)
	require.NoError(t, err)
	require.True(t, b.last().Logprobs)
	require.Equal(t, 2, b.last().TopLogprobs)
	got := resp.Choices[0].Logprobs.Content
	require.Len(t, got, 2)
	require.Equal(t, "h", got[0].Token)
	require.Equal(t, -0.5, got[0].Logprob)
	require.Equal(t, []int64{104}, got[0].Bytes)
	require.Equal(t, []int64{'i'}, got[1].Bytes, "bytes from the token when Ollama sent none")
	require.Len(t, got[1].TopLogprobs, 2)
	require.Equal(t, "o", got[1].TopLogprobs[1].Token)
	require.Equal(t, "null", resp.Choices[0].Logprobs.JSON.Refusal.Raw())
}

// TestOpenAIFieldsOnOllama drives the real Ollama through the official SDK:
// tools for a model without tool support (aurax-tiny's template has none)
// answer with tool_choice none and fail without it, logprobs come back
// well-formed streamed and not, n = 3 gives 3 choices, the ignored fields
// are accepted, and legacy completions take logprobs.
func TestOpenAIFieldsOnOllama(t *testing.T) {
	base, _ := realServer(t)
	client := sdk(base)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	params := openai.ChatCompletionNewParams{Model: "qwen3:coder", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
		MaxTokens: openai.Int(8), Seed: openai.Int(11)}

	t.Run("tool_choice none on a model without tools", func(t *testing.T) {
		p := params
		p.Tools = []openai.ChatCompletionToolUnionParam{tool("get_weather")}
		_, err := client.Chat.Completions.New(ctx, p)
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr, "the tools reach Ollama, which refuses them for this model")
		require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
		require.Contains(t, apiErr.Message, "does not support tools")

		p.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}
		resp, err := client.Chat.Completions.New(ctx, p)
		require.NoError(t, err)
		require.Len(t, resp.Choices, 1)
		require.Empty(t, resp.Choices[0].Message.ToolCalls)
	})

	t.Run("logprobs", func(t *testing.T) {
		p := params
		p.Logprobs, p.TopLogprobs = openai.Bool(true), openai.Int(3)
		resp, err := client.Chat.Completions.New(ctx, p)
		require.NoError(t, err)
		content := resp.Choices[0].Logprobs.Content
		require.NotEmpty(t, content)
		require.LessOrEqual(t, len(content), int(resp.Usage.CompletionTokens))
		var text strings.Builder
		for _, tok := range content {
			requireLogprob(t, tok.Logprob)
			require.Len(t, tok.TopLogprobs, 3)
			for i, alt := range tok.TopLogprobs {
				requireLogprob(t, alt.Logprob)
				if i > 0 {
					require.LessOrEqual(t, alt.Logprob, tok.TopLogprobs[i-1].Logprob, "alternatives best first")
				}
			}
			text.WriteString(tok.Token)
		}
		require.Equal(t, resp.Choices[0].Message.Content, text.String(), "the tokens spell the answer")

		stream := client.Chat.Completions.NewStreaming(ctx, p)
		n := 0
		for stream.Next() {
			for _, ch := range stream.Current().Choices {
				for _, tok := range ch.Logprobs.Content {
					requireLogprob(t, tok.Logprob)
					require.Len(t, tok.TopLogprobs, 3)
					n++
				}
			}
		}
		require.NoError(t, stream.Err())
		require.Positive(t, n, "streamed chunks carry their tokens' logprobs")
	})

	t.Run("n=3", func(t *testing.T) {
		p := params
		p.N = openai.Int(3)
		resp, err := client.Chat.Completions.New(ctx, p)
		require.NoError(t, err)
		require.Len(t, resp.Choices, 3)
		for i, ch := range resp.Choices {
			require.Equal(t, int64(i), ch.Index)
			require.Contains(t, []string{"stop", "length"}, ch.FinishReason)
		}
		require.GreaterOrEqual(t, resp.Usage.CompletionTokens, int64(3), "the completions add up")
		require.Equal(t, resp.Usage.PromptTokens+resp.Usage.CompletionTokens, resp.Usage.TotalTokens)

		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := client.Chat.Completions.NewStreaming(ctx, p)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			require.True(t, acc.AddChunk(stream.Current()))
		}
		require.NoError(t, stream.Err())
		require.Len(t, acc.Choices, 3)
		for _, ch := range acc.Choices {
			require.NotEmpty(t, ch.FinishReason)
		}
		require.GreaterOrEqual(t, acc.Usage.CompletionTokens, int64(3))
	})

	t.Run("ignored fields", func(t *testing.T) {
		p := params
		p.User, p.Store, p.Metadata = openai.String("alice"), openai.Bool(false), shared.Metadata{"k": "v"}
		p.ServiceTier = openai.ChatCompletionNewParamsServiceTierDefault
		p.ParallelToolCalls = openai.Bool(true)
		_, err := client.Chat.Completions.New(ctx, p)
		require.NoError(t, err)
	})

	t.Run("completions logprobs", func(t *testing.T) {
		resp, err := client.Completions.New(ctx, openai.CompletionNewParams{
			Model:     openai.CompletionNewParamsModel("aurax-tiny"),
			Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon")},
			MaxTokens: openai.Int(6), Logprobs: openai.Int(2),
		})
		require.NoError(t, err)
		lp := resp.Choices[0].Logprobs
		require.NotEmpty(t, lp.Tokens)
		require.Len(t, lp.TokenLogprobs, len(lp.Tokens))
		require.Len(t, lp.TopLogprobs, len(lp.Tokens))
		require.Equal(t, int64(0), lp.TextOffset[0])
	})

	t.Run("embeddings with an empty prompt", func(t *testing.T) {
		resp, err := http.Post(base+"/api/embeddings", "application/json", strings.NewReader(`{"model":"aurax-tiny-embed","prompt":""}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "as Ollama: the model loads, no vector: %s", body)
		var out map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &out))
		require.Equal(t, "[]", string(out["embedding"]))
	})
}

func requireLogprob(t *testing.T, lp float64) {
	t.Helper()
	require.LessOrEqual(t, lp, 0.0)
	require.Greater(t, lp, -1000.0)
}

// TestChoicesTakeTheirOwnSlots: n = 3 holds three slots while it runs; a
// choice that fails fails the request with its own status, streamed or
// not.
func TestChoicesTakeTheirOwnSlots(t *testing.T) {
	b := &stubBackend{block: make(chan struct{})}
	s, _ := newTestServer(t, b, testConfig())
	body := `{"model":"fake","messages":[{"role":"user","content":"hi"}],"n":3,"seed":5}`
	done := make(chan string, 1)
	go func() {
		_, out, _ := rawReq(s, "POST", "/v1/chat/completions", body)
		done <- out
	}()
	require.Eventually(t, func() bool { return s.Pool().Stats().InFlight == 3 }, 5*time.Second, time.Millisecond)
	close(b.block)
	var resp struct{ Choices []struct{ Index int } }
	out := <-done
	require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
	require.Len(t, resp.Choices, 3)
	require.Contains(t, out, `"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}`, "the prompt once, the completions summed")
	require.Zero(t, s.Pool().Stats().InFlight)

	for _, stream := range []string{"false", "true"} {
		s, _ := newTestServer(t, &stubBackend{err: &models.ModelNotFoundError{Model: "ghost"}}, testConfig())
		r, out := doReq(t, s, "POST", "/v1/chat/completions", `{"model":"ghost","messages":[{"role":"user","content":"hi"}],"n":2,"stream":`+stream+`}`)
		require.Equal(t, http.StatusNotFound, r.StatusCode, "stream %s: %s", stream, out)
		require.Zero(t, s.Pool().Stats().InFlight)
	}
}

// TestChoicesSeeds: with a seed, choice i samples with seed + i.
func TestChoicesSeeds(t *testing.T) {
	b := &scriptBackend{resp: api.ChatResponse{Message: api.Message{Role: "assistant", Content: "x"}}}
	s, _ := newTestServer(t, b, testConfig())
	r, out := doReq(t, s, "POST", "/v1/chat/completions", `{"model":"fake","messages":[{"role":"user","content":"hi"}],"n":3,"seed":40,"stream":true}`)
	require.Equal(t, 200, r.StatusCode, out)
	for i := range 3 {
		require.Contains(t, out, fmt.Sprintf(`"index":%d`, i))
	}
	seeds := map[any]bool{}
	for _, req := range b.reqs {
		seeds[req.Options["seed"]] = true
	}
	require.Equal(t, map[any]bool{40: true, 41: true, 42: true}, seeds)
	require.Equal(t, 1, strings.Count(out, "[DONE]"))
}

// FuzzToolChoice: any tool_choice is a subset of the tools or a 400.
func FuzzToolChoice(f *testing.F) {
	for _, s := range []string{`"none"`, `"auto"`, `"required"`, `{"type":"function","function":{"name":"f"}}`,
		`{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"g"}}]}}`, `3`, `{"type":"custom"}`, `null`} {
		f.Add(s)
	}
	tools := []json.RawMessage{json.RawMessage(`{"type":"function","function":{"name":"f"}}`), json.RawMessage(`{"type":"function","function":{"name":"g"}}`)}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := toolChoice(json.RawMessage(raw), tools)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) || he.Status != 400 || !strings.HasPrefix(he.Param, "tool_choice") {
				t.Fatalf("%q: %v", raw, err)
			}
			return
		}
		if len(out) > len(tools) {
			t.Fatalf("%q: %d tools out of %d", raw, len(out), len(tools))
		}
		for _, o := range out {
			if !slices.ContainsFunc(tools, func(t json.RawMessage) bool { return string(t) == string(o) }) {
				t.Fatalf("%q: %s is not one of the tools", raw, o)
			}
		}
	})
}
