package server

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/ollama/ollama/api"
)

// OpenAI request fields that have no one-to-one Ollama option: tool_choice,
// parallel_tool_calls, logprobs and top_logprobs.

// toolChoice applies tool_choice to the tools a request sends Ollama:
// "auto" (or none given) sends them all; "none" sends none, so a model
// without tool support answers; "required" sends them all; a named
// function ({"type":"function","function":{"name":...}}) or an
// allowed_tools list sends only those. Ollama cannot force a call: with
// "required" or a name the model may still answer in text.
func toolChoice(raw json.RawMessage, tools []json.RawMessage) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return tools, nil
	}
	if raw[0] == '"' {
		return toolMode(raw, tools)
	}
	var obj struct {
		Type     string `json:"type"`
		Function *struct {
			Name string `json:"name"`
		} `json:"function"`
		AllowedTools *struct {
			Mode  string `json:"mode"`
			Tools []struct {
				Type     string `json:"type"`
				Function *struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tools"`
		} `json:"allowed_tools"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, badField("tool_choice", "must be \"none\", \"auto\", \"required\" or an object naming a function")
	}
	var names []string
	switch obj.Type {
	case "function":
		if obj.Function == nil || obj.Function.Name == "" {
			return nil, badField("tool_choice.function.name", "is required")
		}
		names = []string{obj.Function.Name}
	case "allowed_tools":
		if obj.AllowedTools == nil || len(obj.AllowedTools.Tools) == 0 {
			return nil, badField("tool_choice.allowed_tools.tools", "must name at least one tool")
		}
		switch obj.AllowedTools.Mode {
		case "", "auto", "required":
		default:
			return nil, badField("tool_choice.allowed_tools.mode", "%q is not auto or required", obj.AllowedTools.Mode)
		}
		for _, t := range obj.AllowedTools.Tools {
			if t.Function == nil || t.Function.Name == "" {
				return nil, badField("tool_choice.allowed_tools.tools", "each tool must name a function")
			}
			names = append(names, t.Function.Name)
		}
	default:
		return nil, badField("tool_choice.type", "%q is not function or allowed_tools", obj.Type)
	}
	return namedTools(tools, names)
}

// toolMode is tool_choice as a string: auto and required keep the tools,
// none drops them.
func toolMode(raw json.RawMessage, tools []json.RawMessage) ([]json.RawMessage, error) {
	var mode string
	if err := json.Unmarshal(raw, &mode); err != nil {
		return nil, badField("tool_choice", "not a valid string")
	}
	switch mode {
	case "auto":
		return tools, nil
	case "none":
		return nil, nil
	case "required":
		if len(tools) == 0 {
			return nil, badField("tool_choice", "\"required\" needs tools")
		}
		return tools, nil
	}
	return nil, badField("tool_choice", "%q is not none, auto or required", mode)
}

// namedTools keeps the tools whose function is one of names; at least one.
func namedTools(tools []json.RawMessage, names []string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for _, t := range tools {
		var def struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(t, &def) == nil && slices.Contains(names, def.Function.Name) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, badField("tool_choice", "names no function of tools (%q)", names)
	}
	return out, nil
}

// maxTopLogprobs is OpenAI's bound on top_logprobs, and Ollama's.
const maxTopLogprobs = 20

// logprobsOptions validates logprobs and top_logprobs (OpenAI: top_logprobs
// needs logprobs) and returns Ollama's.
func logprobsOptions(logprobs *bool, top *int) (bool, int, error) {
	on := logprobs != nil && *logprobs
	if top == nil {
		return on, 0, nil
	}
	if *top < 0 || *top > maxTopLogprobs {
		return false, 0, badField("top_logprobs", "must be between 0 and %d", maxTopLogprobs)
	}
	if !on && *top > 0 {
		return false, 0, badField("top_logprobs", "needs logprobs: true")
	}
	return on, *top, nil
}

// oaLogprobs is a chat choice's logprobs: one entry per generated token.
type oaLogprobs struct {
	Content []oaTokenLogprob `json:"content"`
	Refusal json.RawMessage  `json:"refusal"`
}

type oaTokenLogprob struct {
	Token       string         `json:"token"`
	Logprob     float64        `json:"logprob"`
	Bytes       []int          `json:"bytes"`
	TopLogprobs []oaTopLogprob `json:"top_logprobs"`
}

type oaTopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// chatLogprobs is Ollama's logprobs in OpenAI's chat shape; nil when there
// are none (the field is then null).
func chatLogprobs(lps []api.Logprob) *oaLogprobs {
	if len(lps) == 0 {
		return nil
	}
	out := &oaLogprobs{Content: make([]oaTokenLogprob, len(lps)), Refusal: jsonNull}
	for i, lp := range lps {
		t := oaTokenLogprob{Token: lp.Token, Logprob: lp.Logprob, Bytes: tokenBytes(lp.TokenLogprob), TopLogprobs: make([]oaTopLogprob, len(lp.TopLogprobs))}
		for j, alt := range lp.TopLogprobs {
			t.TopLogprobs[j] = oaTopLogprob{Token: alt.Token, Logprob: alt.Logprob, Bytes: tokenBytes(alt)}
		}
		out.Content[i] = t
	}
	return out
}

// tokenBytes is the token's UTF-8 bytes: Ollama's when it sent them.
func tokenBytes(t api.TokenLogprob) []int {
	if t.Bytes != nil {
		return t.Bytes
	}
	b := make([]int, len(t.Token))
	for i := range len(t.Token) {
		b[i] = int(t.Token[i])
	}
	return b
}

// oaTextLogprobs is a legacy completion choice's logprobs.
type oaTextLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// textLogprobs is Ollama's logprobs in the legacy completions shape, the
// text offsets counted from offset (the text already sent).
func textLogprobs(lps []api.Logprob, offset int) *oaTextLogprobs {
	if len(lps) == 0 {
		return nil
	}
	out := &oaTextLogprobs{Tokens: make([]string, len(lps)), TokenLogprobs: make([]float64, len(lps)),
		TopLogprobs: make([]map[string]float64, len(lps)), TextOffset: make([]int, len(lps))}
	for i, lp := range lps {
		out.Tokens[i], out.TokenLogprobs[i], out.TextOffset[i] = lp.Token, lp.Logprob, offset
		offset += len(lp.Token)
		top := make(map[string]float64, len(lp.TopLogprobs))
		for _, alt := range lp.TopLogprobs {
			top[alt.Token] = alt.Logprob
		}
		out.TopLogprobs[i] = top
	}
	return out
}

// oneToolCall keeps the first tool call when parallel_tool_calls is false:
// Ollama has no such switch and may return several.
func oneToolCall(calls []api.ToolCall, seen int) []api.ToolCall {
	switch {
	case seen >= 1:
		return nil
	case len(calls) > 1:
		return calls[:1]
	}
	return calls
}
