package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/rag"
)

func init() {
	register("ingest", "add files and folders to a RAG collection", runIngest)
}

func runIngest(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ingestMain(ctx, args, os.Stdout, os.Stderr)
}

// ingestMain is `aurax ingest --collection NAME [--server URL] PATH...`:
// through a running server's API with --server, else on the local store
// with the configured Ollama. A progress line goes to stderr, the summary
// and every failure to stdout; any failure makes the exit status 1.
func ingestMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var collection, serverURL, key string
	cfg, fs, err := loadConfig("ingest", args, func(fs *flag.FlagSet) {
		fs.StringVar(&collection, "collection", "", "collection to ingest into (required; created if missing)")
		fs.StringVar(&serverURL, "server", "", "base URL of a running AURAX: ingest through its API (default: the local store)")
		fs.StringVar(&key, "key", "", "API key for --server: the admin key when auth is on (default: auth.admin_key)")
	})
	if err != nil {
		return err
	}
	paths := fs.Args()
	switch {
	case collection == "":
		return usageErrorf("--collection is required")
	case len(paths) == 0:
		return usageErrorf("no paths to ingest: aurax ingest --collection NAME [flags] PATH...")
	}
	if err := rag.ValidateCollectionName(collection); err != nil {
		return fmt.Errorf("--collection: %w", err)
	}
	if key == "" {
		key = cfg.Auth.AdminKey
	}
	p := newProgress(stderr)
	var res rag.IngestResult
	start := time.Now()
	if serverURL != "" {
		res, err = ingestRemote(ctx, newAPIClient(serverURL, key), cfg, collection, paths, p)
	} else {
		res, err = ingestLocal(ctx, cfg, collection, paths, p)
	}
	p.finish()
	if err != nil && res.Files == 0 {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "ingested %d documents (%d chunks) from %d files into %q in %s (%.0f chunks/s)\n",
		res.Documents, res.Chunks, res.Files, collection, el.Round(time.Millisecond), float64(res.Chunks)/max(el.Seconds(), 1e-9))
	if len(res.Failed) > 0 {
		fmt.Fprintf(stdout, "%d failed:\n", len(res.Failed))
		for _, f := range res.Failed {
			fmt.Fprintf(stdout, "  %s: %s\n", f.Source, strings.TrimPrefix(f.Error, f.Source+": "))
		}
	}
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return errExitSilently
	}
	return nil
}

// ingestLocal runs the Ingester on the local store.
func ingestLocal(ctx context.Context, cfg config.Config, collection string, paths []string, p *progress) (rag.IngestResult, error) {
	logger := newLogger(cfg.Server, io.Discard)
	st, err := openRAGStore(cfg.RAG, logger)
	if err != nil {
		return rag.IngestResult{}, err
	}
	defer st.Close()
	engines, stop, err := localPool(cfg, logger)
	if err != nil {
		return rag.IngestResult{}, err
	}
	defer stop()
	svc := newModelService(cfg, engines)
	model, dist := ragEmbedModel(cfg), rag.Distance(cfg.RAG.Distance)
	if info, ok, err := collectionInfo(ctx, st, collection); err != nil {
		return rag.IngestResult{}, err
	} else if ok {
		dist = info.Distance
		if info.EmbedModel != "" {
			model = info.EmbedModel
		}
	}
	in, err := rag.NewIngester(st, ragEmbedder(svc, cfg.RAG, nil), rag.IngestOptions{
		Chunker:          rag.Chunker{Size: cfg.RAG.ChunkSize, Overlap: cfg.RAG.ChunkOverlap},
		Distance:         dist,
		MaxDocumentBytes: cfg.RAG.MaxDocumentBytes,
		Logger:           logger,
		Progress:         p.update,
	})
	if err != nil {
		return rag.IngestResult{}, err
	}
	return in.IngestPaths(ctx, collection, model, paths)
}

// Remote batches: documents and bytes per request.
const (
	remoteBatchDocs  = 32
	remoteBatchBytes = 1 << 20
)

// ingestRemote decodes files here and sends their documents in batches;
// the server chunks, embeds and stores them. A batch the server refuses
// for its content is retried one document at a time, so that only the
// bad documents fail.
func ingestRemote(ctx context.Context, api *apiClient, cfg config.Config, collection string, paths []string, p *progress) (rag.IngestResult, error) {
	var res rag.IngestResult
	start := time.Now()
	if err := api.do(ctx, "POST", "/v1/rag/collections", map[string]string{"name": collection}, nil); err != nil {
		return res, fmt.Errorf("create collection %q: %w", collection, err)
	}
	docPath := "/v1/rag/collections/" + url.PathEscape(collection) + "/documents"
	var batch []rag.Document
	size := 0
	report := func(current string) {
		el := time.Since(start)
		p.update(rag.Progress{Files: res.Files, Documents: res.Documents, Chunks: res.Chunks, Failed: len(res.Failed),
			Elapsed: el, Rate: float64(res.Chunks) / max(el.Seconds(), 1e-9), Current: current})
	}
	send := func(docs []rag.Document) error {
		var out rag.IngestResult
		err := api.do(ctx, "POST", docPath, map[string]any{"documents": docs}, &out)
		if err == nil {
			res.Documents += out.Documents
			res.Chunks += out.Chunks
			res.Failed = append(res.Failed, out.Failed...)
		}
		return err
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		docs := batch
		batch, size = nil, 0
		err := send(docs)
		if clientError(err) {
			err = nil
			for _, d := range docs {
				if e := send([]rag.Document{d}); clientError(e) {
					res.Failed = append(res.Failed, rag.Failure{Source: d.ID, Error: e.Error()})
				} else if e != nil {
					return e
				}
			}
		}
		report(docs[len(docs)-1].ID)
		return err
	}
	err := walkDocuments(ctx, paths, cfg.RAG.MaxDocumentBytes, func(file string, docs []rag.Document, err error) error {
		res.Files++
		if err != nil {
			res.Failed = append(res.Failed, rag.Failure{Source: file, Error: err.Error()})
			report(file)
			return nil
		}
		for _, d := range docs {
			if len(batch) > 0 && (len(batch) >= remoteBatchDocs || size+len(d.Text) > remoteBatchBytes) {
				if err := flush(); err != nil {
					return err
				}
			}
			batch = append(batch, d)
			size += len(d.Text)
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return res, err
}

// walkDocuments calls fn for every file under paths that the Ingester
// would take (known extensions, no hidden entries; a file named explicitly
// whatever its extension), with its decoded documents or why it has none.
// An error from fn, or ctx ending, stops the walk.
func walkDocuments(ctx context.Context, paths []string, maxBytes int, fn func(file string, docs []rag.Document, err error) error) error {
	return rag.WalkFiles(paths, func(p string, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			return fn(p, nil, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fn(p, nil, err)
		}
		docs, err := rag.DecodeFile(filepath.ToSlash(p), data, "")
		if err != nil {
			return fn(p, nil, err)
		}
		for _, doc := range docs {
			if len(doc.Text) > maxBytes {
				return fn(p, nil, fmt.Errorf("%s: %d bytes exceeds rag.max_document_bytes %d", doc.ID, len(doc.Text), maxBytes))
			}
		}
		return fn(p, docs, nil)
	})
}

// progress draws one status line on stderr: rewritten in place on a
// terminal, else a line at most every few seconds.
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
	line string
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(pr rag.Progress) {
	p.line = fmt.Sprintf("files %d  documents %d  chunks %d  failed %d  %.1f chunks/s  %s",
		pr.Files, pr.Documents, pr.Chunks, pr.Failed, pr.Rate, pr.Current)
	every := 2 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", p.line)
	} else {
		fmt.Fprintln(p.w, p.line)
	}
}

// finish draws the last state and ends the line.
func (p *progress) finish() {
	if p.line == "" {
		return
	}
	p.draw()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
