package runpod

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// endpointObject is an endpoint as GET /v2/serverless/{id} answers it:
// the settings the provider manages among read-only fields it ignores.
const endpointObject = `{
  "id": "ep123", "name": "aurax", "computeType": "GPU", "gpuTypeIds": ["NVIDIA GeForce RTX 4090"],
  "gpuCount": 1, "templateId": "30zmvf89kd", "version": 3, "executionTimeoutMs": 600000,
  "flashboot": true, "env": {"ENV_VAR": "value"}, "createdAt": "2024-07-12T19:14:40.144Z",
  "workers": {"min": 1, "max": 10, "idleTimeout": 10},
  "scaling": %s
}`

func TestDecodeEndpoint(t *testing.T) {
	tests := []struct {
		name, scaling string
		want          Scaler
		err           string
	}{
		{"fractional queueDelay", `{"type":"QUEUE_DELAY","queueDelay":2.5}`, Scaler{Type: "QUEUE_DELAY", QueueDelay: 2.5}, ""},
		{"integer queueDelay", `{"type":"QUEUE_DELAY","queueDelay":8}`, Scaler{Type: "QUEUE_DELAY", QueueDelay: 8}, ""},
		{"exponent queueDelay", `{"type":"QUEUE_DELAY","queueDelay":4e0}`, Scaler{Type: "QUEUE_DELAY", QueueDelay: 4}, ""},
		{"requestCount", `{"type":"REQUEST_COUNT","requestCount":4}`, Scaler{Type: "REQUEST_COUNT", RequestCount: 4}, ""},
		{"null scaling", `null`, Scaler{}, ""},
		{"fractional requestCount", `{"type":"REQUEST_COUNT","requestCount":2.5}`, Scaler{}, "requestCount"},
		{"negative queueDelay", `{"type":"QUEUE_DELAY","queueDelay":-0.5}`, Scaler{}, "scaling.queueDelay -0.5 outside"},
		{"absurd queueDelay", `{"type":"QUEUE_DELAY","queueDelay":1e300}`, Scaler{}, "scaling.queueDelay 1e+300 outside"},
		{"string queueDelay", `{"type":"QUEUE_DELAY","queueDelay":"4"}`, Scaler{}, "queueDelay"},
		{"negative requestCount", `{"type":"REQUEST_COUNT","requestCount":-1}`, Scaler{}, "negative scaling.requestCount -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEndpoint([]byte(fmtEndpoint(tt.scaling)))
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, Endpoint{ID: "ep123", Name: "aurax", Workers: Workers{Min: 1, Max: 10, IdleTimeout: 10}, Scaling: tt.want}, e)
		})
	}
	for name, body := range map[string]string{
		"min above max":     `{"workers":{"min":4,"max":3}}`,
		"fractional min":    `{"workers":{"min":1.5,"max":3}}`,
		"negative timeout":  `{"workers":{"min":0,"max":3,"idleTimeout":-1}}`,
		"trailing data":     `{"workers":{"min":0,"max":3}} {}`,
		"not an object":     `[1]`,
		"workers as string": `{"workers":"1-3"}`,
	} {
		_, err := DecodeEndpoint([]byte(body))
		require.Error(t, err, name)
		require.ErrorContains(t, err, "decode endpoint", name)
	}
}

func fmtEndpoint(scaling string) string { return strings.Replace(endpointObject, "%s", scaling, 1) }

// TestPatchScalerShape checks what PATCH sends for each scaler: RunPod's
// field names, a plain number for queueDelay, nothing of the other type.
func TestPatchScalerShape(t *testing.T) {
	for _, tc := range []struct {
		s    Scaler
		want string
	}{
		{Scaler{Type: ScalerQueueDelay, QueueDelay: 2.5}, `{"type":"QUEUE_DELAY","queueDelay":2.5}`},
		{Scaler{Type: ScalerQueueDelay, QueueDelay: 8}, `{"type":"QUEUE_DELAY","queueDelay":8}`},
		{Scaler{Type: ScalerRequestCount, RequestCount: 3}, `{"type":"REQUEST_COUNT","requestCount":3}`},
	} {
		b, err := json.Marshal(tc.s)
		require.NoError(t, err)
		require.Equal(t, tc.want, string(b))
	}
}
