package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/rag"
)

func init() {
	register("search", "search a RAG collection", runSearch)
}

func runSearch(args []string) error {
	return searchMain(context.Background(), args, os.Stdout)
}

// searchResult is the answer of POST /v1/rag/search, also printed by --json.
type searchResult struct {
	Object     string    `json:"object"`
	Collection string    `json:"collection"`
	Model      string    `json:"model"`
	Data       []rag.Hit `json:"data"`
}

// searchMain is `aurax search --collection NAME [flags] "query"`: through a
// running server with --server, else on the local store.
func searchMain(ctx context.Context, args []string, stdout io.Writer) error {
	var (
		collection, serverURL, key, filter string
		topK                               int
		minScore                           float64
		asJSON                             bool
	)
	cfg, fs, err := loadConfig("search", args, func(fs *flag.FlagSet) {
		fs.StringVar(&collection, "collection", "", "collection to search (required)")
		fs.StringVar(&serverURL, "server", "", "base URL of a running AURAX: search through its API (default: the local store)")
		fs.StringVar(&key, "key", "", "API key for --server (default: the first of auth.api_keys, else auth.admin_key)")
		fs.IntVar(&topK, "top-k", 0, "hits to return (0: rag.top_k)")
		fs.Float64Var(&minScore, "min-score", 0, "lowest score to return (0: rag.min_score)")
		fs.StringVar(&filter, "filter", "", `metadata filter as JSON, e.g. {"lang":"en"}`)
		fs.BoolVar(&asJSON, "json", false, "print the JSON answer")
	})
	if err != nil {
		return err
	}
	query := strings.TrimSpace(strings.Join(fs.Args(), " "))
	switch {
	case collection == "":
		return usageErrorf("--collection is required")
	case query == "":
		return usageErrorf(`no query: aurax search --collection NAME [flags] "query"`)
	}
	req := rag.Request{Collection: collection, Query: query, TopK: topK}
	if minScore != 0 {
		req.MinScore = &minScore
	}
	if filter != "" {
		if req.Filter, err = rag.ParseFilter([]byte(filter)); err != nil {
			return fmt.Errorf("--filter: %w", err)
		}
	}
	var res searchResult
	if serverURL != "" {
		if key == "" && len(cfg.Auth.APIKeys) > 0 {
			key = cfg.Auth.APIKeys[0]
		}
		if key == "" {
			key = cfg.Auth.AdminKey
		}
		err = newAPIClient(serverURL, key).do(ctx, "POST", "/v1/rag/search", req, &res)
	} else {
		res, err = searchLocal(ctx, cfg, req)
	}
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if len(res.Data) == 0 {
		fmt.Fprintln(stdout, "no hits")
		return nil
	}
	for i, h := range res.Data {
		fmt.Fprintf(stdout, "%d. %.4f  %s #%d\n   %s\n", i+1, h.Score, h.DocumentID, h.Chunk, excerpt(h.Text, 240))
	}
	return nil
}

// searchLocal embeds the query with the collection's model and searches
// the local store.
func searchLocal(ctx context.Context, cfg config.Config, req rag.Request) (searchResult, error) {
	st, err := openRAGStore(cfg.RAG, newLogger(cfg.Server, io.Discard))
	if err != nil {
		return searchResult{}, err
	}
	defer st.Close()
	info, ok, err := collectionInfo(ctx, st, req.Collection)
	if err != nil {
		return searchResult{}, err
	}
	if !ok {
		return searchResult{}, fmt.Errorf("collection %q: %w", req.Collection, rag.ErrCollectionNotFound)
	}
	req.Model = ragEmbedModel(cfg)
	if info.EmbedModel != "" {
		req.Model = info.EmbedModel
	}
	p, stop, err := localPool(cfg, newLogger(cfg.Server, io.Discard))
	if err != nil {
		return searchResult{}, err
	}
	defer stop()
	svc := newModelService(cfg, p)
	r := rag.NewRetriever(st, rag.EmbedderFunc(svc.EmbedTexts), rag.RetrieverOptions{TopK: cfg.RAG.TopK, MinScore: cfg.RAG.MinScore})
	hits, err := r.Retrieve(ctx, req)
	if err != nil {
		return searchResult{}, err
	}
	return searchResult{Object: "list", Collection: req.Collection, Model: req.Model, Data: hits}, nil
}

// excerpt is text on one line, cut at n runes.
func excerpt(text string, n int) string {
	s := strings.Join(strings.Fields(text), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
