// Package runpod runs AURAX as a RunPod Serverless queue worker: it takes
// jobs from RunPod's job queue (runpod-python's worker protocol: job take
// as a long poll, job done, job stream, heartbeat ping) and answers each one
// through the same in-process Fiber handlers as HTTP (admission queue,
// metrics, RAG, auth), by serving the server's app on an in-memory listener
// and calling it with an ordinary http.Client (so streaming works as on the
// wire).
//
// A job's input mirrors worker-vllm's: {"openai_route": "/v1/chat/completions",
// "openai_input": {...}} or, for Ollama's API, {"ollama_route": "/api/chat",
// "ollama_input": {...}}. A non-streamed job's output is the endpoint's JSON
// answer. A streamed one posts each chunk to the stream URL as it comes
// (OpenAI: the SSE frame text "data: {...}\n\n", as worker-vllm sends it;
// Ollama: each NDJSON object) and its final output is the list of every
// chunk (runpod-python's return_aggregate_stream). A failing job (bad
// input, an HTTP error, an error event mid-stream) posts {"error": "..."}
// and the worker takes the next one.
package runpod
