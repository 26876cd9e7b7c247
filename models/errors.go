package models

import (
	"errors"
	"fmt"
)

// Sentinel errors a caller maps to HTTP statuses.
var (
	// ErrUnavailable: the backend could not be reached (connection refused,
	// DNS failure). Maps to 503.
	ErrUnavailable = errors.New("model backend unreachable")
	// ErrTimeout: the backend did not answer in time. Maps to 504.
	ErrTimeout = errors.New("model backend timed out")
)

// ModelNotFoundError says the backend does not have the model.
type ModelNotFoundError struct{ Model string }

func (e *ModelNotFoundError) Error() string {
	return fmt.Sprintf("model %q not found, try pulling it first", e.Model)
}

// UpstreamError is an error status or an error object from the backend.
// Status is the backend's HTTP status (0 when the error came mid-stream).
type UpstreamError struct {
	Status  int
	Message string
}

func (e *UpstreamError) Error() string {
	if e.Status == 0 {
		return "ollama: " + e.Message
	}
	return fmt.Sprintf("ollama: status %d: %s", e.Status, e.Message)
}
