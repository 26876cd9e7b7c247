package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aurax/aurax/rag"
	"github.com/ollama/ollama/api"
)

// The OpenAI request types: only what AURAX maps; unknown fields are ignored
// as OpenAI's own SDKs send fields a backend may not know.

type oaChatRequest struct {
	Model         string           `json:"model"`
	Messages      []oaMessage      `json:"messages"`
	Stream        bool             `json:"stream"`
	StreamOptions *oaStreamOptions `json:"stream_options"`
	oaSampling
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	ResponseFormat      *oaResponseFormat `json:"response_format"`
	Tools               []json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls"`
	ReasoningEffort     string            `json:"reasoning_effort"`
	Logprobs            *bool             `json:"logprobs"`
	TopLogprobs         *int              `json:"top_logprobs"`
	// Accepted and ignored, whatever their value (README): an Ollama
	// engine has no end users, stored completions or service tiers.
	User        json.RawMessage `json:"user"`
	Metadata    json.RawMessage `json:"metadata"`
	Store       json.RawMessage `json:"store"`
	ServiceTier json.RawMessage `json:"service_tier"`
}

// oaSampling is what OpenAI's chat and completion requests share: the
// sampling fields, mapped to Ollama options by options.
type oaSampling struct {
	Temperature      *float64   `json:"temperature"`
	TopP             *float64   `json:"top_p"`
	MaxTokens        *int       `json:"max_tokens"`
	Stop             stringList `json:"stop"`
	Seed             *int       `json:"seed"`
	FrequencyPenalty *float64   `json:"frequency_penalty"`
	PresencePenalty  *float64   `json:"presence_penalty"`
	N                *int       `json:"n"`
}

type oaStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type oaResponseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Schema json.RawMessage `json:"schema"`
	} `json:"json_schema"`
}

type oaMessage struct {
	Role       string       `json:"role"`
	Content    oaContent    `json:"content"`
	Name       string       `json:"name"`
	ToolCalls  []oaToolCall `json:"tool_calls"`
	ToolCallID string       `json:"tool_call_id"`
}

type oaToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// oaContent is a message's content: a string, or an array of parts (text and
// data-URL images).
type oaContent struct {
	Text   string
	Images []api.ImageData
}

func (c *oaContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '"' {
		if t, ok := plainString(b); ok {
			c.Text = t
			return nil
		}
		return json.Unmarshal(b, &c.Text)
	}
	var parts []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL *struct {
			URL string `json:"url"`
		} `json:"image_url"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("must be a string or an array of content parts")
	}
	var sb strings.Builder
	for i, p := range parts {
		switch p.Type {
		case "text":
			if sb.Len() > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(p.Text)
		case "image_url":
			if p.ImageURL == nil {
				return fmt.Errorf("part %d: image_url is missing", i)
			}
			img, err := decodeDataURL(p.ImageURL.URL)
			if err != nil {
				return fmt.Errorf("part %d: %w", i, err)
			}
			c.Images = append(c.Images, img)
		default:
			return fmt.Errorf("part %d: unsupported content part type %q", i, p.Type)
		}
	}
	c.Text = sb.String()
	return nil
}

func decodeDataURL(u string) ([]byte, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return nil, errors.New("image_url must be a data: URL (AURAX does not fetch remote images)")
	}
	_, data, ok := strings.Cut(rest, ";base64,")
	if !ok {
		return nil, errors.New("image_url data URL must be base64")
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, errors.New("image_url data URL: invalid base64")
	}
	return b, nil
}

// stringList is OpenAI's "string or array of strings" (stop, input, prompt).
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*s = nil
		return nil
	case b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("must be a string or an array of strings")
	}
	*s = many
	return nil
}

// The OpenAI response types.

type oaUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// oaRespMessage is a response message or a stream delta. Thinking goes
// out twice: as reasoning_content (DeepSeek's name, which Open WebUI and
// LibreChat read first) and as reasoning (Ollama's own /v1 name, their
// fallback, and OpenRouter's).
type oaRespMessage struct {
	Role             string          `json:"role,omitempty"`
	Content          *string         `json:"content,omitempty"`
	Refusal          json.RawMessage `json:"refusal,omitempty"` // null on messages and first deltas: Ollama never refuses apart
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	Reasoning        string          `json:"reasoning,omitempty"`
	ToolCalls        []oaToolCall    `json:"tool_calls,omitempty"`
}

// jsonNull is the literal null, for fields that must be present as null.
var jsonNull = json.RawMessage("null")

type oaChoice struct {
	Index        int            `json:"index"`
	Message      *oaRespMessage `json:"message,omitempty"`
	Delta        *oaRespMessage `json:"delta,omitempty"`
	Text         *string        `json:"text,omitempty"`
	Logprobs     any            `json:"logprobs"` // *oaLogprobs (chat), *oaTextLogprobs (completions), or null
	FinishReason *string        `json:"finish_reason"`
}

type oaCompletion struct {
	ID                string     `json:"id"`
	Object            string     `json:"object"`
	Created           int64      `json:"created"`
	Model             string     `json:"model"`
	SystemFingerprint string     `json:"system_fingerprint"`
	Choices           []oaChoice `json:"choices"`
	Usage             *oaUsage   `json:"usage,omitempty"`
	// Citations is AURAX's extension on retrieval-augmented chat: on the
	// response, or on the first chunk of a stream.
	Citations []rag.Citation `json:"citations,omitzero"`
}

// plainString is the JSON string b ("...") when it needs no decoding: no
// escape, no control character, valid UTF-8, so that its bytes are its
// value, as encoding/json would give it. A message's content is almost
// always one; the rest go to encoding/json.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	for _, c := range in {
		if c < 0x20 || c == '\\' || c == '"' {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}
