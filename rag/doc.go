// Package rag is retrieval-augmented generation: documents are decoded,
// chunked, embedded and stored in a vector Store; questions are embedded,
// searched and turned into a system message with citations.
//
// The pieces, in the order data flows through them:
//
//   - DecodeFile / DecodeJSON turn outside input into Documents; Markdown
//     (parsed by goldmark) and HTML become plain text whose code blocks
//     stay verbatim inside ``` fences.
//   - Chunker splits a Document's text at paragraph and sentence
//     boundaries, and fenced code between lines.
//   - Embedder is the model service's embed call; NewCachedEmbedder adds
//     batching, bounded concurrency and an LRU cache.
//   - Ingester embeds chunks and upserts them with deterministic ids, so
//     re-ingesting a document changes nothing and a new version replaces
//     the old chunks.
//   - Store is the vector database: rag/embedded (bbolt on local disk, the
//     default) and rag/qdrant (gRPC). Both also implement Collections.
//   - Retriever embeds a query and searches; Augmenter renders the hits
//     into a system message through a text/template and returns Citations.
//
// Wiring a store from Config (the subpackages import rag, so rag cannot
// choose for you):
//
//	switch cfg.Store {
//	case rag.StoreEmbedded:
//		st, err = embedded.Open(cfg.Path, embedded.Options{Logger: logger})
//	case rag.StoreQdrant:
//		st, err = qdrant.New(cfg.Qdrant, qdrant.Options{Logger: logger})
//	}
//
// Errors: callers test the sentinels ErrCollectionNotFound,
// ErrDimensionMismatch, ErrInvalidFilter, ErrInvalidArgument and
// ErrUnavailable with errors.Is; every Store wraps them with context.
package rag
