package rag

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// ErrEmbedding wraps failures of the Embedder during retrieval.
var ErrEmbedding = errors.New("embedding failed")

// RetrieverOptions are the defaults a Request may override.
type RetrieverOptions struct {
	TopK     int
	MinScore float64
	Metrics  *Metrics
}

// Retriever embeds a query and searches a collection.
type Retriever struct {
	s    Searcher
	emb  Embedder
	opts RetrieverOptions
}

// NewRetriever returns a Retriever; TopK 0 means DefaultTopK.
func NewRetriever(s Searcher, emb Embedder, opts RetrieverOptions) *Retriever {
	if opts.TopK <= 0 {
		opts.TopK = DefaultTopK
	}
	return &Retriever{s: s, emb: emb, opts: opts}
}

// Request is one retrieval. Zero TopK and nil MinScore take the defaults.
type Request struct {
	Collection string   `json:"collection"`
	Model      string   `json:"model,omitempty"`
	Query      string   `json:"query"`
	TopK       int      `json:"top_k,omitempty"`
	MinScore   *float64 `json:"min_score,omitempty"`
	Filter     Filter   `json:"filter,omitempty"`
}

// Retrieve returns the hits for req, best first. Errors wrap the Store's
// sentinels; an embedding failure is returned as is (wrapped). The caller
// decides what on_error means and counts skips with Metrics.Skip.
func (r *Retriever) Retrieve(ctx context.Context, req Request) ([]Hit, error) {
	start := time.Now()
	if strings.TrimSpace(req.Query) == "" {
		return nil, fmt.Errorf("%w: empty query", ErrInvalidArgument)
	}
	if err := req.Filter.Validate(); err != nil {
		return nil, err
	}
	q := Query{TopK: req.TopK, MinScore: req.MinScore, Filter: req.Filter}
	if q.TopK == 0 {
		q.TopK = r.opts.TopK
	}
	if q.MinScore == nil {
		ms := r.opts.MinScore
		q.MinScore = &ms
	}
	vecs, err := r.emb.Embed(ctx, req.Model, []string{req.Query})
	if err != nil {
		return nil, fmt.Errorf("%w: query: %w", ErrEmbedding, err)
	}
	if len(vecs) != 1 {
		return nil, fmt.Errorf("embed query: got %d vectors", len(vecs))
	}
	q.Vector = vecs[0]
	hits, err := r.s.Search(ctx, req.Collection, q)
	if err != nil {
		return nil, err
	}
	if m := r.opts.Metrics; m != nil {
		m.RetrievalDuration.Observe(time.Since(start).Seconds())
		m.SearchHits.Observe(float64(len(hits)))
	}
	return hits, nil
}

// SkipReason classifies a Retrieve error for aurax_rag_skipped_total.
func SkipReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return SkipTimeout
	case errors.Is(err, ErrEmbedding):
		return SkipEmbed
	case IsInputError(err):
		return SkipInvalid
	}
	return SkipStore
}

// Citation is what a response returns per hit.
type Citation struct {
	DocumentID string   `json:"document_id"`
	Chunk      int      `json:"chunk"`
	Score      float64  `json:"score"`
	Metadata   Metadata `json:"metadata,omitempty"`
}

// Citations converts hits, keeping their order.
func Citations(hits []Hit) []Citation {
	out := make([]Citation, len(hits))
	for i, h := range hits {
		out[i] = Citation{DocumentID: h.DocumentID, Chunk: h.Chunk, Score: h.Score, Metadata: h.Metadata}
	}
	return out
}

// DefaultTemplate renders hits as numbered sources. Its data is
// TemplateData.
const DefaultTemplate = `Answer the question using the context below. Cite sources as [n]. If the context does not contain the answer, say so.

Context:
{{range .Hits}}[{{.N}}] ({{.DocumentID}}#{{.Chunk}})
{{.Text}}

{{end}}`

// TemplateData is what the system-message template sees.
type TemplateData struct {
	Query string
	Hits  []TemplateHit
}

// TemplateHit is a Hit with its 1-based number.
type TemplateHit struct {
	N int
	Hit
}

// Augmenter renders the system message from hits.
type Augmenter struct {
	t *template.Template
}

// NewAugmenter parses text as a Go text/template ("" means
// DefaultTemplate); a parse error wraps ErrInvalidArgument.
func NewAugmenter(text string) (*Augmenter, error) {
	if text == "" {
		text = DefaultTemplate
	}
	t, err := template.New("rag").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: rag template: %v", ErrInvalidArgument, err)
	}
	return &Augmenter{t: t}, nil
}

// Augmentation is the system message and its citations.
type Augmentation struct {
	System    string     `json:"system"`
	Citations []Citation `json:"citations"`
}

// Augment renders the system message for query and hits. With no hits it
// returns an empty System (the caller sends the question unaugmented).
func (a *Augmenter) Augment(query string, hits []Hit) (Augmentation, error) {
	if len(hits) == 0 {
		return Augmentation{Citations: []Citation{}}, nil
	}
	data := TemplateData{Query: query, Hits: make([]TemplateHit, len(hits))}
	for i, h := range hits {
		data.Hits[i] = TemplateHit{N: i + 1, Hit: h}
	}
	var b strings.Builder
	if err := a.t.Execute(&b, data); err != nil {
		return Augmentation{}, fmt.Errorf("rag template: %w", err)
	}
	return Augmentation{System: b.String(), Citations: Citations(hits)}, nil
}
