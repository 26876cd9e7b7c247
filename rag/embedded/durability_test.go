package embedded

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/aurax/aurax/rag"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	childEnv = "AURAX_RAG_DURABILITY_CHILD"
	durDim   = 64
)

// docVector is a deterministic vector per document id, so the parent can
// search for exactly what the child wrote.
func docVector(id string) []float32 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return randVec(rand.New(rand.NewPCG(h.Sum64(), 7)), durDim)
}

// TestDurabilityChild is the subprocess of TestDurabilityKill9: it ingests
// documents forever and prints "ack <id>" after each Upsert returns.
func TestDurabilityChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("subprocess of TestDurabilityKill9 only")
	}
	ctx := context.Background()
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	if _, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "dur", Dimension: durDim}); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("doc-%06d", i)
		pts := make([]rag.Point, 3)
		for c := range pts {
			pts[c] = rag.Point{DocumentID: id, Chunk: c, Text: id, Vector: docVector(id)}
		}
		if err := s.Upsert(ctx, "dur", pts); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("ack", id)
	}
}

// TestDurabilityKill9: a subprocess ingests in a loop and is SIGKILLed
// mid-stream; on reopen the store is clean and every acknowledged document
// is there and searchable.
func TestDurabilityKill9(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("parent only")
	}
	path := filepath.Join(t.TempDir(), "rag.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	var acked []string
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(20 * time.Second)
	for sc.Scan() {
		line := sc.Text()
		require.False(t, strings.HasPrefix(line, "error"), "child: %s", line)
		if id, ok := strings.CutPrefix(line, "ack "); ok {
			acked = append(acked, id)
		}
		if len(acked) >= 150 || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	// Acks already printed but not yet scanned count too.
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked = append(acked, id)
		}
	}
	_ = cmd.Wait()
	require.NotEmpty(t, acked, "child acknowledged nothing")

	s, err := Open(path, Options{})
	require.NoError(t, err, "reopen after kill -9")
	defer s.Close()
	ctx := context.Background()
	n, err := s.Count(ctx, "dur")
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 3*len(acked))
	for _, id := range acked {
		hits, err := s.Search(ctx, "dur", rag.Query{Vector: docVector(id), TopK: 1})
		require.NoError(t, err)
		require.Len(t, hits, 1, "doc %s", id)
		require.Equal(t, id, hits[0].DocumentID, "Search(vector of %s)", id)
	}
	t.Logf("%d acknowledged documents survived SIGKILL (%d points on disk)", len(acked), n)
}
