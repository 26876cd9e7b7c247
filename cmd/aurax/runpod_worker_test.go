package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/stretchr/testify/require"
)

// TestRunPodWorkerLocalMode: without RUNPOD_WEBHOOK_GET_JOB the worker runs
// the test input once, prints the output and exits 0, or 1 when it fails.
func TestRunPodWorkerLocalMode(t *testing.T) {
	up, err := fakeollama.Start(fakeollama.Options{Models: []string{"fake"}})
	require.NoError(t, err)
	defer up.Close()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"input":{"openai_route":"/v1/chat/completions","openai_input":{"model":"fake","messages":[{"role":"user","content":"hi"}]}}}`), 0o600))
	require.NoError(t, os.WriteFile(bad, []byte(`{"input":{"openai_route":"/v1/nope","openai_input":{}}}`), 0o600))
	env := []string{"AURAX_OLLAMA_URL=" + up.URL, "AURAX_MODELS_DEFAULT=fake", "AURAX_MODELS_EMBEDDING=",
		"AURAX_RAG_PATH=" + filepath.Join(dir, "rag.db"), "RUNPOD_WEBHOOK_GET_JOB="}
	for _, tc := range []struct {
		file string
		code int
		want string
	}{
		{good, 0, `"chat.completion"`},
		{bad, 1, `unknown openai_route`},
		{filepath.Join(dir, "missing.json"), 1, "local mode"},
	} {
		cmd, out := aurax(t, env, "runpod-worker", "--test-input", tc.file)
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		require.Equalf(t, tc.code, code, "%s: %s", tc.file, out)
		require.Contains(t, out.String(), tc.want, tc.file)
	}
}
