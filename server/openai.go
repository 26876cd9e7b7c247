package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/aurax/aurax/internal/jsonx"
	"github.com/aurax/aurax/rag"
	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

// toOllama validates an OpenAI chat request and maps it to Ollama's.
func (r *oaChatRequest) toOllama() (*api.ChatRequest, error) {
	if len(r.Messages) == 0 {
		return nil, badField("messages", "must contain at least one message")
	}
	maxTok := r.MaxCompletionTokens
	if maxTok == nil {
		maxTok = r.MaxTokens
	}
	opts, err := r.options(maxTok)
	if err != nil {
		return nil, err
	}
	out := &api.ChatRequest{Model: r.Model, Options: opts}
	for i, m := range r.Messages {
		msg, err := m.toOllama(i)
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, msg)
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			out.Format = json.RawMessage(`"json"`)
		case "json_schema":
			if rf.JSONSchema == nil || len(rf.JSONSchema.Schema) == 0 {
				return nil, badField("response_format.json_schema.schema", "is required for type json_schema")
			}
			out.Format = rf.JSONSchema.Schema
		default:
			return nil, badField("response_format.type", "%q is not text, json_object or json_schema", rf.Type)
		}
	}
	if len(r.Tools) > 0 {
		raw, _ := json.Marshal(r.Tools)
		if err := json.Unmarshal(raw, &out.Tools); err != nil {
			return nil, badField("tools", "not a list of function tools: %v", err)
		}
	}
	tools, err := toolChoice(r.ToolChoice, r.Tools)
	if err != nil {
		return nil, err
	}
	if len(tools) != len(r.Tools) {
		out.Tools = nil
		if len(tools) > 0 {
			raw, _ := json.Marshal(tools)
			_ = json.Unmarshal(raw, &out.Tools) // a subset of what decoded above
		}
	}
	if out.Logprobs, out.TopLogprobs, err = logprobsOptions(r.Logprobs, r.TopLogprobs); err != nil {
		return nil, err
	}
	switch r.ReasoningEffort {
	case "":
	case "none":
		out.Think = &api.ThinkValue{Value: false}
	case "low", "medium", "high":
		out.Think = &api.ThinkValue{Value: true}
	default:
		return nil, badField("reasoning_effort", "%q is not none, low, medium or high", r.ReasoningEffort)
	}
	return out, nil
}

func (m oaMessage) toOllama(i int) (api.Message, error) {
	field := fmt.Sprintf("messages[%d]", i)
	out := api.Message{Content: m.Content.Text, Images: m.Content.Images, ToolCallID: m.ToolCallID}
	switch m.Role {
	case "system", "user", "assistant", "tool":
		out.Role = m.Role
	case "developer":
		out.Role = "system"
	case "":
		return out, badField(field+".role", "is required")
	default:
		return out, badField(field+".role", "%q is not system, developer, user, assistant or tool", m.Role)
	}
	if m.Role == "tool" {
		out.ToolName = m.Name
	}
	for j, tc := range m.ToolCalls {
		call := api.ToolCall{ID: tc.ID, Function: api.ToolCallFunction{Index: j, Name: tc.Function.Name}}
		if tc.Function.Arguments != "" {
			if err := json.Unmarshal([]byte(tc.Function.Arguments), &call.Function.Arguments); err != nil {
				return out, badField(fmt.Sprintf("%s.tool_calls[%d].function.arguments", field, j), "must be a JSON object encoded as a string")
			}
		}
		out.ToolCalls = append(out.ToolCalls, call)
	}
	return out, nil
}

// options validates the sampling fields and maps them to Ollama options,
// with maxTok (the request's limit, or the endpoint's default) as
// num_predict.
func (o oaSampling) options(maxTok *int) (map[string]any, error) {
	temp, topP, stop, seed, freq, pres := o.Temperature, o.TopP, o.Stop, o.Seed, o.FrequencyPenalty, o.PresencePenalty
	opts := map[string]any{}
	if temp != nil {
		if *temp < 0 || *temp > 2 || math.IsNaN(*temp) {
			return nil, badField("temperature", "must be between 0 and 2")
		}
		opts["temperature"] = *temp
	}
	if topP != nil {
		if *topP < 0 || *topP > 1 || math.IsNaN(*topP) {
			return nil, badField("top_p", "must be between 0 and 1")
		}
		opts["top_p"] = *topP
	}
	if maxTok != nil {
		if *maxTok < 1 {
			return nil, badField("max_tokens", "must be at least 1")
		}
		opts["num_predict"] = *maxTok
	}
	if len(stop) > 4 {
		return nil, badField("stop", "at most 4 stop sequences")
	}
	if len(stop) > 0 {
		opts["stop"] = stop
	}
	if seed != nil {
		opts["seed"] = *seed
	}
	for name, p := range map[string]*float64{"frequency_penalty": freq, "presence_penalty": pres} {
		if p != nil {
			if *p < -2 || *p > 2 || math.IsNaN(*p) {
				return nil, badField(name, "must be between -2 and 2")
			}
			opts[name] = *p
		}
	}
	return opts, nil
}

func finishReason(doneReason string, toolCalls bool) *string {
	r := "stop"
	switch {
	case toolCalls:
		r = "tool_calls"
	case doneReason == "length":
		r = "length"
	}
	return &r
}

// choices is n, the number of choices asked for: 1 unless set, at most max
// (server.max_n).
func (o oaSampling) choices(max int) (int, error) {
	if o.N == nil {
		return 1, nil
	}
	if *o.N < 1 || *o.N > max {
		return 0, badField("n", "must be between 1 and %d (server.max_n)", max)
	}
	return *o.N, nil
}

// chatChoice is one non-streamed chat answer as choice i.
func chatChoice(i int, resp *api.ChatResponse, oneCall bool) oaChoice {
	content := resp.Message.Content
	msg := &oaRespMessage{Role: "assistant", Content: &content, Refusal: jsonNull,
		ReasoningContent: resp.Message.Thinking, Reasoning: resp.Message.Thinking}
	calls := resp.Message.ToolCalls
	if oneCall {
		calls = oneToolCall(calls, 0)
	}
	if len(calls) > 0 {
		msg.ToolCalls = toolCallsOut(calls, 0)
	}
	ch := oaChoice{Index: i, Message: msg, FinishReason: finishReason(resp.DoneReason, len(msg.ToolCalls) > 0)}
	if lp := chatLogprobs(resp.Logprobs); lp != nil {
		ch.Logprobs = lp
	}
	return ch
}

func toolCallsOut(calls []api.ToolCall, offset int) []oaToolCall {
	out := make([]oaToolCall, 0, len(calls))
	for i, tc := range calls {
		o := oaToolCall{ID: tc.ID, Type: "function"}
		if o.ID == "" {
			o.ID = fmt.Sprintf("call_%d", offset+i)
		}
		idx := offset + i
		o.Index = &idx
		o.Function.Name = tc.Function.Name
		args, _ := json.Marshal(tc.Function.Arguments)
		o.Function.Arguments = string(args)
		out = append(out, o)
	}
	return out
}

func (s *Server) openAIChat(c *fiber.Ctx) error {
	var req oaChatRequest
	if err := decodeHot(c, &req); err != nil {
		return err
	}
	oreq, err := req.toOllama()
	if err != nil {
		return err
	}
	n, err := req.choices(s.cfg.Server.MaxN)
	if err != nil {
		return err
	}
	rg, err := s.augment(c, oreq)
	if err != nil {
		return err
	}
	model := req.Model
	if model == "" {
		model = s.models.DefaultChat()
	}
	oneCall := req.ParallelToolCalls != nil && !*req.ParallelToolCalls
	if n > 1 {
		return s.openAIChatN(c, &req, oreq, rg, model, n)
	}
	stream := req.Stream
	oreq.Stream = &stream
	id, created := "chatcmpl-"+requestID(c), time.Now().Unix()
	return chatExchange(model, oreq).serve(s, c, answer[api.ChatResponse]{
		whole: func(r *api.ChatResponse) any {
			return oaCompletion{ID: id, Object: "chat.completion", Created: created, Model: model, SystemFingerprint: "fp_aurax",
				Choices: []oaChoice{chatChoice(0, r, oneCall)},
				Usage:   &oaUsage{r.PromptEvalCount, r.EvalCount, r.PromptEvalCount + r.EvalCount}, Citations: rg.cites()}
		},
		stream: func() streamer[api.ChatResponse] {
			e := &chatSSE{base: oaCompletion{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, SystemFingerprint: "fp_aurax"},
				usage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage, oneCall: oneCall, citations: rg.cites()}
			return sse(e.chunk)
		},
	})
}

// chatSSE turns Ollama chat chunks into OpenAI chat.completion.chunk events
// of choice index.
type chatSSE struct {
	base      oaCompletion
	index     int
	usage     bool
	oneCall   bool // parallel_tool_calls: false
	sentRole  bool
	toolCalls int
	citations []rag.Citation // sent on the first chunk, then nil

	promptTok, completeTok int // the usage of the last chunk
}

func (e *chatSSE) chunk(w *bufio.Writer, r *api.ChatResponse) error {
	delta := &oaRespMessage{}
	var cites []rag.Citation
	if !e.sentRole {
		delta.Role, delta.Refusal, e.sentRole = "assistant", jsonNull, true
		cites, e.citations = e.citations, nil
	}
	if r.Message.Content != "" || delta.Role != "" {
		content := r.Message.Content
		delta.Content = &content
	}
	delta.ReasoningContent, delta.Reasoning = r.Message.Thinking, r.Message.Thinking
	calls := r.Message.ToolCalls
	if e.oneCall {
		calls = oneToolCall(calls, e.toolCalls)
	}
	if len(calls) > 0 {
		delta.ToolCalls = toolCallsOut(calls, e.toolCalls)
		e.toolCalls += len(calls)
	}
	lp := chatLogprobs(r.Logprobs)
	if delta.Role != "" || delta.Content != nil || delta.ReasoningContent != "" || delta.ToolCalls != nil || lp != nil {
		ev := e.base
		ch := oaChoice{Index: e.index, Delta: delta}
		if lp != nil {
			ch.Logprobs = lp
		}
		ev.Choices = []oaChoice{ch}
		ev.Citations = cites
		if err := writeSSE(w, &ev); err != nil {
			return err
		}
	}
	if !r.Done {
		return nil
	}
	e.promptTok, e.completeTok = r.PromptEvalCount, r.EvalCount
	ev := e.base
	ev.Choices = []oaChoice{{Index: e.index, Delta: &oaRespMessage{}, FinishReason: finishReason(r.DoneReason, e.toolCalls > 0)}}
	if err := writeSSE(w, &ev); err != nil {
		return err
	}
	if e.usage {
		ev := e.base
		ev.Choices = []oaChoice{}
		ev.Usage = &oaUsage{r.PromptEvalCount, r.EvalCount, r.PromptEvalCount + r.EvalCount}
		return writeSSE(w, &ev)
	}
	return nil
}

func writeSSE(w *bufio.Writer, v any) error {
	w.WriteString("data: ")
	if err := jsonx.Encode(w, v); err != nil {
		return err
	}
	_, err := w.WriteString("\n")
	return err
}

// sse streams chunks as OpenAI's server-sent events: chunk writes each,
// a comment line keeps the connection alive, an error event or
// "data: [DONE]" ends it.
func sse[T any](chunk func(w *bufio.Writer, v *T) error) streamer[T] {
	return streamer[T]{contentType: "text/event-stream", chunk: chunk, keepAlive: sseKeepAlive, fail: sseFail, end: sseDone}
}

func sseKeepAlive(w *bufio.Writer) { w.WriteString(": keep-alive\n\n") }

func sseDone(w *bufio.Writer) { w.WriteString("data: [DONE]\n\n") }

// sseFail ends a stream with an error event that OpenAI clients raise.
func sseFail(w *bufio.Writer, he *Error) {
	_ = writeSSE(w, struct {
		Error openAIError `json:"error"`
	}{he.openAI()})
}

type oaCompletionRequest struct {
	Model         string           `json:"model"`
	Prompt        stringList       `json:"prompt"`
	Suffix        string           `json:"suffix"`
	Stream        bool             `json:"stream"`
	StreamOptions *oaStreamOptions `json:"stream_options"`
	Logprobs      *int             `json:"logprobs"` // legacy: the number of top tokens, 0 to 5
	oaSampling
}

// completionsDefaultMaxTokens is OpenAI's documented default for
// /v1/completions (vLLM mirrors it too).
const completionsDefaultMaxTokens = 16

func (s *Server) openAICompletions(c *fiber.Ctx) error {
	var req oaCompletionRequest
	if err := decodeHot(c, &req); err != nil {
		return err
	}
	if len(req.Prompt) != 1 {
		return badField("prompt", "exactly one prompt string is supported")
	}
	maxTok := req.MaxTokens
	if maxTok == nil {
		d := completionsDefaultMaxTokens
		maxTok = &d
	}
	opts, err := req.options(maxTok)
	if err != nil {
		return err
	}
	if req.N != nil && *req.N != 1 {
		return badField("n", "only n=1 is supported on /v1/completions (n > 1: /v1/chat/completions)")
	}
	model := req.Model
	if model == "" {
		model = s.models.DefaultChat()
	}
	stream := req.Stream
	oreq := &api.GenerateRequest{Model: req.Model, Prompt: req.Prompt[0], Suffix: req.Suffix, Options: opts, Stream: &stream}
	if lp := req.Logprobs; lp != nil {
		if *lp < 0 || *lp > 5 {
			return badField("logprobs", "must be between 0 and 5")
		}
		oreq.Logprobs, oreq.TopLogprobs = true, *lp
	}
	id, created := "cmpl-"+requestID(c), time.Now().Unix()
	base := oaCompletion{ID: id, Object: "text_completion", Created: created, Model: model, SystemFingerprint: "fp_aurax"}
	return generateExchange(model, "completion", oreq).serve(s, c, answer[api.GenerateResponse]{
		whole: func(r *api.GenerateResponse) any {
			text := r.Response
			choice := oaChoice{Text: &text, FinishReason: finishReason(r.DoneReason, false)}
			if lp := textLogprobs(r.Logprobs, 0); lp != nil {
				choice.Logprobs = lp
			}
			out := base
			out.Choices = []oaChoice{choice}
			out.Usage = &oaUsage{r.PromptEvalCount, r.EvalCount, r.PromptEvalCount + r.EvalCount}
			return out
		},
		stream: func() streamer[api.GenerateResponse] {
			e := &textSSE{base: base, usage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage}
			return sse(e.chunk)
		},
	})
}

// textSSE turns Ollama generate chunks into OpenAI text_completion events.
type textSSE struct {
	base   oaCompletion
	usage  bool // stream_options.include_usage
	offset int  // the text sent so far, for the logprobs' text offsets
}

func (e *textSSE) chunk(w *bufio.Writer, r *api.GenerateResponse) error {
	ev := e.base
	text := r.Response
	choice := oaChoice{Text: &text}
	if lp := textLogprobs(r.Logprobs, e.offset); lp != nil {
		choice.Logprobs = lp
	}
	e.offset += len(text)
	if r.Done {
		choice.FinishReason = finishReason(r.DoneReason, false)
	}
	if text == "" && !r.Done {
		return nil
	}
	ev.Choices = []oaChoice{choice}
	if err := writeSSE(w, &ev); err != nil {
		return err
	}
	if r.Done && e.usage {
		ev := e.base
		ev.Choices = []oaChoice{}
		ev.Usage = &oaUsage{r.PromptEvalCount, r.EvalCount, r.PromptEvalCount + r.EvalCount}
		return writeSSE(w, &ev)
	}
	return nil
}
