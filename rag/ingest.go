package rag

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// IngestOptions configures an Ingester.
type IngestOptions struct {
	Chunker Chunker
	// Distance for collections the Ingester creates; "" means cosine.
	Distance Distance
	// MaxDocumentBytes rejects larger documents; 0 means 10 MiB.
	MaxDocumentBytes int
	// BatchSize is the most points per Upsert; 0 means 256.
	BatchSize int
	// TextField names the text of JSON documents; "" means "text".
	TextField string
	Metrics   *Metrics
	Logger    *slog.Logger
	// Progress, when set, is called after each document (from the calling
	// goroutine).
	Progress func(Progress)
}

// Progress is a running count for a progress bar.
type Progress struct {
	Files     int           `json:"files"`
	Documents int           `json:"documents"`
	Chunks    int           `json:"chunks"`
	Failed    int           `json:"failed"`
	Elapsed   time.Duration `json:"elapsed"`
	// Rate is chunks per second so far.
	Rate    float64 `json:"rate"`
	Current string  `json:"current"`
}

// Failure is a document or file that was not ingested, and why.
type Failure struct {
	Source string `json:"source"`
	Error  string `json:"error"`
	Err    error  `json:"-"`
}

// IngestResult summarises an Ingest call. Failed lists every document or
// file that was skipped; nothing is skipped silently.
type IngestResult struct {
	Files     int       `json:"files,omitempty"`
	Documents int       `json:"documents"`
	Chunks    int       `json:"chunks"`
	Failed    []Failure `json:"failed,omitempty"`
}

// Ingester chunks, embeds and upserts documents with deterministic point
// ids (document id + chunk index): ingesting a document again rewrites the
// same points, and a shorter new version has its stale chunks deleted.
type Ingester struct {
	w    Writer
	emb  Embedder
	opts IngestOptions
	log  *slog.Logger
}

// NewIngester validates opts and fills in defaults.
func NewIngester(w Writer, emb Embedder, opts IngestOptions) (*Ingester, error) {
	if err := opts.Chunker.Validate(); err != nil {
		return nil, err
	}
	if opts.Distance == "" {
		opts.Distance = Cosine
	}
	if _, err := ParseDistance(string(opts.Distance)); err != nil {
		return nil, err
	}
	if opts.MaxDocumentBytes <= 0 {
		opts.MaxDocumentBytes = 10 << 20
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingester{w: w, emb: emb, opts: opts, log: log.With("component", "rag.ingest")}, nil
}

// run carries one Ingest call's state.
type run struct {
	in         *Ingester
	collection string
	model      string
	ensured    bool
	res        IngestResult
	start      time.Time
}

// Ingest ingests docs into collection, embedding with model. The collection
// is created on first use with the embeddings' dimension. A document that is
// empty, oversized or has a bad id or metadata is listed in Failed and the
// others go on; an embedding or store error stops the call and is returned
// with the counts so far (documents already acknowledged stay ingested).
func (in *Ingester) Ingest(ctx context.Context, collection, model string, docs []Document) (IngestResult, error) {
	if err := ValidateCollectionName(collection); err != nil {
		return IngestResult{}, err
	}
	r := &run{in: in, collection: collection, model: model, start: time.Now()}
	for _, d := range docs {
		if err := r.document(ctx, d); err != nil {
			return r.res, err
		}
	}
	return r.res, nil
}

// IngestPaths ingests files and folders (walked recursively, keeping the
// files with a known extension and skipping hidden entries). A file named
// explicitly with an unknown extension, or one that fails to read or
// decode, is listed in Failed. Document ids are the slash-separated paths
// as given.
func (in *Ingester) IngestPaths(ctx context.Context, collection, model string, paths []string) (IngestResult, error) {
	if err := ValidateCollectionName(collection); err != nil {
		return IngestResult{}, err
	}
	r := &run{in: in, collection: collection, model: model, start: time.Now()}
	err := WalkFiles(paths, func(p string, err error) error {
		if err != nil {
			r.fail(p, err, SkipDecode)
			return nil
		}
		return r.file(ctx, p)
	})
	return r.res, err
}

// WalkFiles calls fn for each file IngestPaths would ingest: paths walked
// recursively, hidden entries skipped, files kept when their extension is
// one of Extensions or when they were named explicitly. A path that cannot
// be read comes to fn with its error. An error fn returns stops the walk and
// is returned.
func WalkFiles(paths []string, fn func(path string, err error) error) error {
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fn(p, err)
			}
			if p != root && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || (p != root && !slices.Contains(Extensions, strings.ToLower(filepath.Ext(p)))) {
				return nil
			}
			return fn(p, nil)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *run) file(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.res.Files++
	fi, err := os.Stat(p)
	if err == nil && fi.Size() > int64(r.in.opts.MaxDocumentBytes) && !isJSON(p) {
		err = fmt.Errorf("%w: %d bytes (max %d)", ErrInvalidArgument, fi.Size(), r.in.opts.MaxDocumentBytes)
	}
	var data []byte
	if err == nil {
		data, err = os.ReadFile(p)
	}
	var docs []Document
	if err == nil {
		docs, err = DecodeFile(filepath.ToSlash(p), data, r.in.opts.TextField)
	}
	if err != nil {
		r.fail(p, err, SkipDecode)
		r.progress(p)
		return nil
	}
	for _, d := range docs {
		if err := r.document(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func isJSON(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".json", ".jsonl", ".ndjson":
		return true
	}
	return false
}

func (r *run) fail(source string, err error, reason string) {
	r.res.Failed = append(r.res.Failed, Failure{Source: source, Error: err.Error(), Err: err})
	r.in.opts.Metrics.Skip(reason)
	r.in.log.Warn("document skipped", "source", source, "err", err)
}

func (r *run) progress(current string) {
	if r.in.opts.Progress == nil {
		return
	}
	el := time.Since(r.start)
	rate := 0.0
	if el > 0 {
		rate = float64(r.res.Chunks) / el.Seconds()
	}
	r.in.opts.Progress(Progress{
		Files: r.res.Files, Documents: r.res.Documents, Chunks: r.res.Chunks,
		Failed: len(r.res.Failed), Elapsed: el, Rate: rate, Current: current,
	})
}

// document ingests one document; only errors that should stop the run are
// returned.
func (r *run) document(ctx context.Context, d Document) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer r.progress(d.ID)
	chunks, err := r.validate(d)
	if err != nil {
		r.fail(d.ID, err, SkipInvalid)
		return nil
	}
	vecs, err := r.in.emb.Embed(ctx, r.model, chunks)
	if err != nil {
		r.in.opts.Metrics.Skip(SkipEmbed)
		return fmt.Errorf("ingest %q: %w", d.ID, err)
	}
	if len(vecs) != len(chunks) {
		return fmt.Errorf("ingest %q: embedder returned %d vectors for %d chunks", d.ID, len(vecs), len(chunks))
	}
	if !r.ensured {
		spec := CollectionSpec{Name: r.collection, Dimension: len(vecs[0]), Distance: r.in.opts.Distance, EmbedModel: r.model}
		if _, err := r.in.w.EnsureCollection(ctx, spec); err != nil {
			return fmt.Errorf("ingest %q: %w", d.ID, err)
		}
		r.ensured = true
	}
	pts := make([]Point, len(chunks))
	for i, c := range chunks {
		pts[i] = Point{DocumentID: d.ID, Chunk: i, Text: c, Vector: vecs[i], Metadata: d.Metadata}
	}
	for lo := 0; lo < len(pts); lo += r.in.opts.BatchSize {
		hi := min(lo+r.in.opts.BatchSize, len(pts))
		if err := r.in.w.Upsert(ctx, r.collection, pts[lo:hi]); err != nil {
			return fmt.Errorf("ingest %q: %w", d.ID, err)
		}
	}
	// A previous, longer version leaves chunks ≥ len(chunks): remove them.
	if err := r.in.w.DeleteChunks(ctx, r.collection, d.ID, len(chunks)); err != nil {
		return fmt.Errorf("ingest %q: delete stale chunks: %w", d.ID, err)
	}
	r.res.Documents++
	r.res.Chunks += len(chunks)
	r.in.opts.Metrics.chunks(len(chunks))
	return nil
}

func (r *run) validate(d Document) ([]string, error) {
	if err := ValidateDocumentID(d.ID); err != nil {
		return nil, err
	}
	if len(d.Text) > r.in.opts.MaxDocumentBytes {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrDocumentTooLarge, len(d.Text), r.in.opts.MaxDocumentBytes)
	}
	if err := d.Metadata.Validate(); err != nil {
		return nil, err
	}
	chunks := r.in.opts.Chunker.Split(d.Text)
	if len(chunks) == 0 {
		return nil, ErrEmptyDocument
	}
	return chunks, nil
}

// ErrDocumentTooLarge wraps ErrInvalidArgument (HTTP 413 if you like).
var ErrDocumentTooLarge = fmt.Errorf("%w: document too large", ErrInvalidArgument)

// IsInputError reports whether err is the caller's fault (a 4xx).
func IsInputError(err error) bool {
	return errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrInvalidFilter) ||
		errors.Is(err, ErrDimensionMismatch) || errors.Is(err, ErrCollectionNotFound)
}
