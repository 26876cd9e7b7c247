package pool

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRefreshModels: a model that appears on an engine (a pull) is in the
// routing's view at once, without waiting for the next tags probe, and one
// that goes (a delete) is gone from it; an engine that does not answer is
// named, the others refreshed all the same.
func TestRefreshModels(t *testing.T) {
	a := &fakeEngine{models: []string{"m:latest"}}
	b := &fakeEngine{models: []string{"m:latest"}}
	p := newFakePool(t, Options{Targets: []Target{{URL: "http://a:11434"}, {URL: "http://b:11434"}}}, map[string]*fakeEngine{"a": a, "b": b})
	ctx := context.Background()
	require.NoError(t, p.RefreshModels(ctx))
	require.Equal(t, []bool{true, false}, p.HasReady("m", "new"))

	a.set(func(f *fakeEngine) { f.models = []string{"m:latest", "new:latest"} })
	b.set(func(f *fakeEngine) { f.models = []string{"new:latest"} })
	require.Equal(t, []bool{false}, p.HasReady("new"), "not seen before a refresh")
	require.NoError(t, p.RefreshModels(ctx))
	require.Equal(t, []bool{true, true}, p.HasReady("new", "m"))
	require.Equal(t, []string{"new:latest"}, engineByName(p, "b:11434").Models)

	a.set(func(f *fakeEngine) { f.down = true })
	b.set(func(f *fakeEngine) { f.models = nil })
	err := p.RefreshModels(ctx)
	require.ErrorContains(t, err, "engine a:11434")
	require.Empty(t, engineByName(p, "b:11434").Models, "the engine that answered is refreshed")
}

// TestManaged lists every engine but those draining, in join order.
func TestManaged(t *testing.T) {
	fakes := map[string]*fakeEngine{"a": {}, "b": {}, "c": {}}
	p := newFakePool(t, Options{Targets: []Target{{URL: "http://a:11434"}, {URL: "http://b:11434"}, {URL: "http://c:11434"}}}, fakes)
	_, ok := p.DrainEngine("b:11434")
	require.True(t, ok)
	var names []string
	for _, t := range p.Managed() {
		names = append(names, t.Name())
	}
	require.Equal(t, []string{"a:11434", "c:11434"}, names)
}
