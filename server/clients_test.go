package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// realServer serves AURAX on loopback in front of the real test Ollama.
func realServer(t *testing.T) (string, *Server) {
	t.Helper()
	base, s, _ := realServerWith(t)
	return base, s
}

// realServerWith is realServer with mods applied to its options; it
// returns the server's registry too.
func realServerWith(t *testing.T, mods ...func(*Options)) (string, *Server, *prometheus.Registry) {
	t.Helper()
	ollamaURL := testenv.Ollama(t)
	backend, err := models.NewOllama(ollamaURL, models.OllamaOptions{})
	require.NoError(t, err)
	cfg := testConfig()
	cfg.Ollama.URL = ollamaURL
	cfg.Models.Default, cfg.Models.Embedding = testenv.ChatModel, testenv.EmbedModel
	cfg.Models.Aliases = map[string]string{"qwen3:coder": testenv.ChatModel}
	s, reg := newTestServer(t, backend, cfg, mods...)
	base, _ := serve(t, s)
	return base, s, reg
}

// TestOpenAIClient drives AURAX in front of the real Ollama with the
// official OpenAI Go SDK, unmodified.
func TestOpenAIClient(t *testing.T) {
	base, _ := realServer(t)
	client := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	params := openai.ChatCompletionNewParams{
		Model:     "qwen3:coder", // the seed's alias
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Say hello")},
		MaxTokens: openai.Int(24),
		Seed:      openai.Int(7),
	}

	t.Run("chat", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, params)
		require.NoError(t, err)
		require.Equal(t, "qwen3:coder", resp.Model)
		require.Len(t, resp.Choices, 1)
		require.NotEmpty(t, resp.Choices[0].Message.Content)
		require.Contains(t, []string{"stop", "length"}, resp.Choices[0].FinishReason)
		require.Positive(t, resp.Usage.CompletionTokens)
		require.Equal(t, resp.Usage.PromptTokens+resp.Usage.CompletionTokens, resp.Usage.TotalTokens)
	})

	t.Run("chat stream with usage", func(t *testing.T) {
		p := params
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := client.Chat.Completions.NewStreaming(ctx, p)
		var acc openai.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			require.True(t, acc.AddChunk(stream.Current()), "accumulator refused chunk %d", chunks)
			chunks++
		}
		require.NoError(t, stream.Err())
		require.Greater(t, chunks, 2)
		require.Len(t, acc.Choices, 1)
		require.NotEmpty(t, acc.Choices[0].Message.Content)
		require.NotEmpty(t, acc.Choices[0].FinishReason)
		require.Positive(t, acc.Usage.CompletionTokens, "include_usage must bring a usage chunk")
	})

	t.Run("completions", func(t *testing.T) {
		resp, err := client.Completions.New(ctx, openai.CompletionNewParams{
			Model:     openai.CompletionNewParamsModel("aurax-tiny"),
			Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon")},
			MaxTokens: openai.Int(8),
		})
		require.NoError(t, err)
		require.Len(t, resp.Choices, 1)
		require.Positive(t, resp.Usage.CompletionTokens)
	})

	t.Run("embeddings", func(t *testing.T) {
		resp, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: openai.EmbeddingModel(testenv.EmbedModel),
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first text", "second text"}},
		})
		require.NoError(t, err)
		require.Len(t, resp.Data, 2)
		require.Len(t, resp.Data[0].Embedding, 64)
		require.Equal(t, int64(1), resp.Data[1].Index)
	})

	t.Run("embeddings base64", func(t *testing.T) {
		resp, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model:          openai.EmbeddingModel(testenv.EmbedModel),
			Input:          openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64,
		})
		require.NoError(t, err)
		require.Len(t, resp.Data, 1)
		require.Contains(t, resp.Data[0].JSON.Embedding.Raw(), `"`, "base64 embeddings are a string")
	})

	t.Run("models", func(t *testing.T) {
		var ids []string
		iter := client.Models.ListAutoPaging(ctx)
		for iter.Next() {
			ids = append(ids, iter.Current().ID)
		}
		require.NoError(t, iter.Err())
		require.Contains(t, ids, "qwen3:coder")
		require.Contains(t, ids, testenv.ChatModel+":latest")
		m, err := client.Models.Get(ctx, "qwen3:coder")
		require.NoError(t, err)
		require.Equal(t, "qwen3:coder", m.ID)
	})

	t.Run("unknown model is a 404 the SDK reports", func(t *testing.T) {
		p := params
		p.Model = "no-such-model"
		_, err := client.Chat.Completions.New(ctx, p)
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusNotFound, apiErr.StatusCode)
		require.Contains(t, apiErr.Message, "no-such-model")
	})
}

// TestOllamaClient drives AURAX with Ollama's own Go client, as Open WebUI
// and other Ollama clients would.
func TestOllamaClient(t *testing.T) {
	base, _ := realServer(t)
	u, err := url.Parse(base)
	require.NoError(t, err)
	client := api.NewClient(u, &http.Client{Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("chat stream", func(t *testing.T) {
		var chunks int
		var content strings.Builder
		var last api.ChatResponse
		err := client.Chat(ctx, &api.ChatRequest{Model: "qwen3:coder", Messages: []api.Message{{Role: "user", Content: "hi"}},
			Options: map[string]any{"num_predict": 16, "seed": 3, "temperature": 0}}, func(r api.ChatResponse) error {
			chunks++
			content.WriteString(r.Message.Content)
			last = r
			return nil
		})
		require.NoError(t, err)
		require.GreaterOrEqual(t, chunks, 2, "content chunks, then the final one")
		require.Equal(t, last.EvalCount, chunks-1, "one chunk per generated token")
		require.True(t, last.Done)
		require.Equal(t, "qwen3:coder", last.Model, "responses name the model the client asked for")
		require.Positive(t, last.EvalCount)
		require.NotEmpty(t, last.DoneReason)
	})

	t.Run("generate", func(t *testing.T) {
		stream := false
		var got api.GenerateResponse
		err := client.Generate(ctx, &api.GenerateRequest{Model: testenv.ChatModel, Prompt: "hello", Stream: &stream,
			Options: map[string]any{"num_predict": 8}}, func(r api.GenerateResponse) error { got = r; return nil })
		require.NoError(t, err)
		require.True(t, got.Done)
		require.Positive(t, got.EvalCount)
	})

	t.Run("embed", func(t *testing.T) {
		resp, err := client.Embed(ctx, &api.EmbedRequest{Model: testenv.EmbedModel, Input: []string{"a", "b", "c"}})
		require.NoError(t, err)
		require.Len(t, resp.Embeddings, 3)
		require.Len(t, resp.Embeddings[0], 64)
	})

	t.Run("list", func(t *testing.T) {
		resp, err := client.List(ctx)
		require.NoError(t, err)
		var names []string
		for _, m := range resp.Models {
			names = append(names, m.Name)
		}
		require.Contains(t, names, "qwen3:coder")
		require.Contains(t, names, testenv.EmbedModel+":latest")
	})

	t.Run("show", func(t *testing.T) {
		resp, err := client.Show(ctx, &api.ShowRequest{Model: "qwen3:coder"})
		require.NoError(t, err)
		require.Equal(t, "qwen3", resp.Details.Family)
		require.Contains(t, resp.Template, "im_start")
	})

	t.Run("version and ps", func(t *testing.T) {
		v, err := client.Version(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, v)
		_, err = client.ListRunning(ctx)
		require.NoError(t, err)
	})

	t.Run("unknown model", func(t *testing.T) {
		err := client.Chat(ctx, &api.ChatRequest{Model: "no-such-model", Messages: []api.Message{{Role: "user", Content: "x"}}},
			func(api.ChatResponse) error { return nil })
		var se api.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusNotFound, se.StatusCode)
	})
}
