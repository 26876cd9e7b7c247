package pool

import (
	"hash/maphash"

	"github.com/ollama/ollama/api"
)

// affinityPrefix bounds the bytes of a conversation hashed into its key.
const affinityPrefix = 4 << 10

var affinitySeed = maphash.MakeSeed()

// ChatKey names a chat's conversation for routing affinity: its model and
// first two messages (the system prompt and the first turn, or the first
// two turns), up to 4 KiB. Later turns of the conversation share them, and
// so the prefix Ollama's prompt cache holds. 0 for a request of one
// message: nothing later shares it.
func ChatKey(req *api.ChatRequest) uint64 {
	if len(req.Messages) < 2 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(affinitySeed)
	h.WriteString(req.Model)
	n := 0
	for _, m := range req.Messages[:2] {
		h.WriteString("\x00" + m.Role + "\x00")
		c := m.Content
		if n+len(c) > affinityPrefix {
			c = c[:max(0, affinityPrefix-n)]
		}
		n += len(c)
		h.WriteString(c)
	}
	return h.Sum64() | 1 // never 0
}

// GenerateKey names a completion's prompt prefix for routing affinity:
// its model, system prompt and the first 4 KiB of its prompt; 0 for a
// prompt shorter than that (too short for its cache to matter).
func GenerateKey(req *api.GenerateRequest) uint64 {
	if len(req.Prompt)+len(req.System) < affinityPrefix/4 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(affinitySeed)
	h.WriteString(req.Model + "\x00" + req.System + "\x00")
	p := req.Prompt
	if len(p) > affinityPrefix {
		p = p[:affinityPrefix]
	}
	h.WriteString(p)
	return h.Sum64() | 1
}
