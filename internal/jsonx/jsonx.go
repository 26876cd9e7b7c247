// Package jsonx is the JSON of the hot path: the engine's answers decoded
// chunk by chunk, the requests to the engine and the answers to the client
// encoded. It is github.com/goccy/go-json, which does what encoding/json
// does (the same tags, omitempty and omitzero, the Marshaler and
// Unmarshaler methods, sorted map keys, HTML escaping) in about half the
// time and with fewer allocations (BenchmarkDecodeChatResponse); the fuzz
// tests hold it to encoding/json's results. Ollama's chat chunks and chat
// requests have decoders of their own here (ollama.go), which skip
// api.Message's second pass through encoding/json. The clients' inference
// requests are decoded with it too (server.decodeHot); what it refuses,
// and every other request, goes to encoding/json (server.decodeBody),
// whose error messages the API's 400s are written from.
package jsonx

import (
	"io"

	gojson "github.com/goccy/go-json"
)

// Unmarshal decodes data into v, as json.Unmarshal.
func Unmarshal(data []byte, v any) error { return gojson.Unmarshal(data, v) }

// Marshal encodes v, as json.Marshal.
func Marshal(v any) ([]byte, error) { return gojson.Marshal(v) }

// Encode writes v to w and a newline, as json.NewEncoder(w).Encode(v).
func Encode(w io.Writer, v any) error { return gojson.NewEncoder(w).Encode(v) }
