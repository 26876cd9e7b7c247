package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestLifecycleRecords: each of the four generating endpoints, whole and
// streamed, in front of the real Ollama, records what the request
// lifecycle records: the model result (status 200), the tokens the answer's
// usage names, a time to first token for streams only, and its access log
// line with the model and the engine.
func TestLifecycleRecords(t *testing.T) {
	var buf testenv.SyncBuffer
	base, s, reg := realServerWith(t, withLog(&buf))
	engine := s.Pool().Engines()[0].Name
	msgs := `"messages":[{"role":"user","content":"Say hello"}]`
	model := `"model":"` + testenv.ChatModel + `"`
	for i, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{` + model + `,` + msgs + `,"max_tokens":8,"stream":%s,"stream_options":{"include_usage":true}}`},
		{"/v1/completions", `{` + model + `,"prompt":"Once upon","max_tokens":8,"stream":%s,"stream_options":{"include_usage":true}}`},
		{"/api/chat", `{` + model + `,` + msgs + `,"options":{"num_predict":8},"stream":%s}`},
		{"/api/generate", `{` + model + `,"prompt":"Once upon","options":{"num_predict":8},"stream":%s}`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", tc.path, stream), func(t *testing.T) {
				before := modelSeries(t, reg)
				rid := fmt.Sprintf("lifecycle-%d-%v", i, stream)
				req, _ := http.NewRequest("POST", base+tc.path, strings.NewReader(fmt.Sprintf(tc.body, fmt.Sprint(stream))))
				req.Header.Set("X-Request-Id", rid)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode, string(body))
				prompt, completion := answerUsage(t, string(body))
				require.Positive(t, prompt, "the answer's usage: %s", body)

				var after map[string]float64
				require.Eventually(t, func() bool {
					after = modelSeries(t, reg)
					return after["requests 200"] == before["requests 200"]+1
				}, 5*time.Second, 10*time.Millisecond, "the model result of a %s request", tc.path)
				require.Equal(t, float64(prompt), after["tokens prompt"]-before["tokens prompt"])
				require.Equal(t, float64(completion), after["tokens completion"]-before["tokens completion"])
				ttft := 0.0
				if stream {
					ttft = 1
				}
				require.Equal(t, ttft, after["ttft"]-before["ttft"], "a time to first token for streams only")

				var line map[string]any
				require.Eventually(t, func() bool {
					for _, l := range accessLines(t, buf.String()) {
						if l["request_id"] == rid {
							line = l
						}
					}
					return line != nil
				}, 5*time.Second, 10*time.Millisecond, "the access log line of %s", rid)
				require.Equal(t, testenv.ChatModel, line["model"])
				require.Equal(t, engine, line["engine"])
				require.EqualValues(t, 200, line["status"])
			})
		}
	}
}

// answerUsage is the prompt and completion tokens an answer reports: the
// OpenAI usage object, or Ollama's counts on its last chunk, in a JSON
// body, SSE events or NDJSON lines.
func answerUsage(t *testing.T, body string) (int, int) {
	t.Helper()
	prompt, completion := 0, 0
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "data: ")
		if l == "" || l == "[DONE]" || strings.HasPrefix(l, ":") {
			continue
		}
		var v struct {
			Usage *struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Done            bool `json:"done"`
			PromptEvalCount int  `json:"prompt_eval_count"`
			EvalCount       int  `json:"eval_count"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &v), l)
		switch {
		case v.Usage != nil:
			prompt, completion = v.Usage.PromptTokens, v.Usage.CompletionTokens
		case v.Done:
			prompt, completion = v.PromptEvalCount, v.EvalCount
		}
	}
	return prompt, completion
}

// modelSeries reads the model metrics of testenv.ChatModel: "requests
// STATUS", "tokens KIND" and "ttft" (its observations).
func modelSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model_type"] != testenv.ChatModel {
				continue
			}
			switch mf.GetName() {
			case "aurax_model_requests_total":
				out["requests "+labels["status"]] = m.GetCounter().GetValue()
			case "aurax_model_tokens_total":
				out["tokens "+labels["kind"]] = m.GetCounter().GetValue()
			case "aurax_model_time_to_first_token_seconds":
				out["ttft"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
