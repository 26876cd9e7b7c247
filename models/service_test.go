package models

import (
	"context"
	"testing"

	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

type listBackend struct{ Backend }

func (listBackend) List(context.Context) (*api.ListResponse, error) {
	return &api.ListResponse{Models: []api.ListModelResponse{{Name: "qwen3:8b"}, {Name: "tiny:latest"}}}, nil
}

func TestResolve(t *testing.T) {
	s := NewService(nil, Config{DefaultChat: "qwen3:8b", DefaultEmbed: "emb", Aliases: map[string]string{"qwen3:coder": "qwen3:8b", "x": "y"}})
	for _, tc := range []struct {
		name  string
		embed bool
		want  string
	}{
		{"", false, "qwen3:8b"},
		{"", true, "emb"},
		{"qwen3:coder", false, "qwen3:8b"},
		{"tiny", false, "tiny"},
		{"x", true, "y"},
	} {
		require.Equalf(t, tc.want, s.Resolve(tc.name, tc.embed), "Resolve(%q, %v)", tc.name, tc.embed)
	}
}

func TestModelsListsAliasesOfPresentModels(t *testing.T) {
	s := NewService(listBackend{}, Config{Aliases: map[string]string{"qwen3:coder": "qwen3:8b", "dangling": "absent", "tiny": "qwen3:8b"}})
	got, err := s.Models(context.Background())
	require.NoError(t, err)
	var names []string
	for _, m := range got {
		names = append(names, m.Name)
	}
	// "dangling" points at nothing; "tiny" would shadow a real model.
	require.Equal(t, []string{"qwen3:8b", "qwen3:coder", "tiny:latest"}, names)
	m, err := s.Find(context.Background(), "tiny")
	require.NoError(t, err)
	require.Equal(t, "tiny:latest", m.Name)
	_, err = s.Find(context.Background(), "nope")
	require.ErrorAs(t, err, new(*ModelNotFoundError))
}
