package embedded

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/aurax/aurax/rag"
)

// clusteredSet is a deterministic stand-in for sentence embeddings, made
// point by point (a million need not be held at once to be queried):
//
//   - one topic centre per clusterSize points, each point its centre plus
//     noise as large as the centre itself (cosine to its centre ≈ 0.7,
//     between two points of a topic ≈ 0.5, between topics ≈ 0);
//   - dimensions of unequal spread (a log-normal scale per dimension), as
//     trained models have, which is what makes one scale per vector lose
//     precision on the small dimensions;
//   - queries near stored points: a stored point plus half as much noise
//     again (a paraphrase), so its ten neighbours are topic members whose
//     scores lie close together, the hard case for an approximation.
//
// Uniform noise would make every neighbour nearly equidistant and say
// little about real data.
type clusteredSet struct {
	seed    uint64
	n, dim  int
	scale   []float64
	centres [][]float64
}

// clusterSize is the points per topic.
const clusterSize = 1000

func newClusteredSet(seed uint64, n, dim int) *clusteredSet {
	r := rand.New(rand.NewPCG(seed, 0))
	c := &clusteredSet{seed: seed, n: n, dim: dim, scale: make([]float64, dim)}
	for i := range c.scale {
		c.scale[i] = math.Exp(0.5 * r.NormFloat64())
	}
	c.centres = make([][]float64, max(1, n/clusterSize))
	for i := range c.centres {
		c.centres[i] = c.noise(r, 1)
	}
	return c
}

// noise is a random vector of norm ≈ size with the per-dimension spread.
func (c *clusteredSet) noise(r *rand.Rand, size float64) []float64 {
	v := make([]float64, c.dim)
	var s float64
	for i := range v {
		v[i] = r.NormFloat64() * c.scale[i]
		s += v[i] * v[i]
	}
	f := size / math.Sqrt(s)
	for i := range v {
		v[i] *= f
	}
	return v
}

func (c *clusteredSet) point(i int) []float64 {
	r := rand.New(rand.NewPCG(c.seed, uint64(i)+1))
	centre := c.centres[r.IntN(len(c.centres))]
	v := c.noise(r, 1)
	for d := range v {
		v[d] += centre[d]
	}
	return v
}

// vector is stored point i.
func (c *clusteredSet) vector(i int) []float32 { return f32(c.point(i)) }

// query is the j-th query: near stored point (j·7919) mod n.
func (c *clusteredSet) query(j int) []float32 {
	v := c.point(j * 7919 % c.n)
	r := rand.New(rand.NewPCG(c.seed^0x9e3779b97f4a7c15, uint64(j)))
	for d, x := range c.noise(r, 0.5) {
		v[d] += x
	}
	return f32(v)
}

// langOf is point i's "lang": en for 70 %, de for 29 %, la for 1 % (a
// selective filter).
func langOf(i int) string {
	switch h := (i * 2654435761) % 100; {
	case h == 0:
		return "la"
	case h < 30:
		return "de"
	}
	return "en"
}

// points returns stored points [from, to): eight chunks per document.
func (c *clusteredSet) points(from, to int) []rag.Point {
	pts := make([]rag.Point, 0, to-from)
	for i := from; i < to; i++ {
		pts = append(pts, rag.Point{
			DocumentID: docOf(i), Chunk: i % 8,
			Text:     "a chunk of some four hundred characters would be typical; this one is shorter.",
			Vector:   c.vector(i),
			Metadata: rag.Metadata{"lang": langOf(i), "source": fmt.Sprintf("file-%d.md", i/8)},
		})
	}
	return pts
}

func docOf(i int) string { return fmt.Sprintf("doc-%07d", i/8) }

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
