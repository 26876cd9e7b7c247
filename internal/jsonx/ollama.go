package jsonx

import (
	"strings"

	"github.com/ollama/ollama/api"
)

// api.Message has an UnmarshalJSON that decodes the message again with
// encoding/json (into a copy of its type without the method) and
// lowercases the role. Under Unmarshal, every chat chunk and every message
// of a chat request went through encoding/json there: 5 % of AURAX's CPU a
// stream. The types below decode the same with jsonx alone: their message
// fields shadow the embedded ones (a field of the outer struct wins over
// one of an embedded struct, by Go's and JSON's rules alike) with message,
// whose UnmarshalJSON is api.Message's on jsonx: the whole message
// replaced (a repeated "message" key keeps the last alone, as with
// encoding/json), the role lowercased. FuzzOllamaMatchesStd holds them to
// encoding/json's results.

type message api.Message

func (m *message) UnmarshalJSON(b []byte) error {
	type fields message // no methods
	var f fields
	if err := Unmarshal(b, &f); err != nil {
		return err
	}
	*m = message(f)
	m.Role = strings.ToLower(m.Role)
	return nil
}

type chatResponse struct {
	api.ChatResponse
	Message message `json:"message"`
}

type chatRequest struct {
	api.ChatRequest
	Messages []message `json:"messages"`
}

// UnmarshalChatResponse decodes an engine's /api/chat line into r (a zero
// value), as json.Unmarshal does.
func UnmarshalChatResponse(data []byte, r *api.ChatResponse) error {
	var c chatResponse
	if err := Unmarshal(data, &c); err != nil {
		return err
	}
	*r = c.ChatResponse
	r.Message = api.Message(c.Message)
	return nil
}

// UnmarshalChatRequest decodes a client's /api/chat body into r (a zero
// value), as json.Unmarshal does.
func UnmarshalChatRequest(data []byte, r *api.ChatRequest) error {
	var c chatRequest
	if err := Unmarshal(data, &c); err != nil {
		return err
	}
	*r = c.ChatRequest // its Messages never decoded: c.Messages shadows them
	if c.Messages != nil {
		r.Messages = make([]api.Message, len(c.Messages))
		for i, m := range c.Messages {
			r.Messages[i] = api.Message(m)
		}
	}
	return nil
}
