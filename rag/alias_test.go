package rag_test

import (
	"testing"

	"github.com/aurax/aurax/rag"
	"github.com/stretchr/testify/require"
)

func TestParseAlias(t *testing.T) {
	tests := []struct {
		target, model, collection string
		ok                        bool
	}{
		{"aurax-tiny@docs", "aurax-tiny", "docs", true},
		{"qwen3:8b@team.handbook", "qwen3:8b", "team.handbook", true},
		{"ns/model@sha@docs", "ns/model@sha", "docs", true},
		{"aurax-tiny", "", "", false},
		{"@docs", "", "", false},
		{"aurax-tiny@", "", "", false},
		{"aurax-tiny@bad name", "", "", false},
	}
	for _, tt := range tests {
		model, coll, err := rag.ParseAlias(tt.target)
		if !tt.ok {
			require.ErrorIs(t, err, rag.ErrInvalidArgument, "ParseAlias(%q)", tt.target)
			continue
		}
		require.NoError(t, err, "ParseAlias(%q)", tt.target)
		require.Equal(t, [2]string{tt.model, tt.collection}, [2]string{model, coll}, "ParseAlias(%q)", tt.target)
	}
	c := rag.DefaultConfig()
	c.Aliases = map[string]string{"ok": "m@docs", "bad": "m"}
	require.ErrorContains(t, c.Validate(), `aliases "bad"="m"`)
}
