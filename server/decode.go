package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/aurax/aurax/internal/jsonx"
	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

// decodeBody decodes the JSON request body into v; the 400 it returns names
// the field at fault where the decoder knows it.
func decodeBody(c *fiber.Ctx, v any) error {
	return decodeJSON(c.Body(), v)
}

// decodeHot is decodeBody for the inference requests (chat, completions,
// generate, embeddings), 7 % of AURAX's CPU at 1,000 requests/s with
// encoding/json (perf): internal/jsonx decodes them, and a body it refuses is decoded again by
// encoding/json into a zeroed v, so that bad input gets the same 400 (and
// input only encoding/json takes is still taken). FuzzDecodeHot holds
// jsonx to accepting only what encoding/json accepts, as the same value.
func decodeHot(c *fiber.Ctx, v any) error {
	return decodeFast(c, v, jsonx.Unmarshal)
}

// decodeChat is decodeHot for an Ollama chat request, whose messages
// jsonx decodes without api.Message's UnmarshalJSON and its second pass
// through encoding/json (jsonx.UnmarshalChatRequest).
func decodeChat(c *fiber.Ctx, req *api.ChatRequest) error {
	return decodeFast(c, req, func(b []byte, _ any) error { return jsonx.UnmarshalChatRequest(b, req) })
}

// decodeFast decodes the body into v with fast, and what fast refuses
// again with encoding/json into a zeroed v.
func decodeFast(c *fiber.Ctx, v any, fast func([]byte, any) error) error {
	body := c.Body()
	if fast(body, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero()
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return newError(fiber.StatusBadRequest, "request body is empty: expected a JSON object")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &Error{Status: fiber.StatusBadRequest, Message: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se), Err: err}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return &Error{Status: fiber.StatusBadRequest, Message: fmt.Sprintf("request body: expected a JSON object, got %s", te.Value), Err: err}
		}
		return &Error{Status: fiber.StatusBadRequest, Param: field, Message: fmt.Sprintf("%s: expected %s, got %s", field, jsonKind(te.Type.Kind().String()), te.Value), Err: err}
	}
	return &Error{Status: fiber.StatusBadRequest, Message: "invalid request: " + err.Error(), Err: err}
}

func jsonKind(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int64", "int32", "uint", "uint64", "float64", "float32":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return "a " + k
}
