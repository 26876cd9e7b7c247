// Package qdrant is the rag.Store on Qdrant, over gRPC with the official
// client (github.com/qdrant/go-client).
//
// Points get deterministic UUIDs (rag.PointID), so retries and re-ingests
// overwrite instead of duplicating. Payload: document_id (keyword index),
// chunk (integer index), text, and metadata (a nested object; filters match
// metadata.<key>, indexed for Config.IndexedFields). Writes wait for the
// write to be applied (wait=true) before acknowledging.
package qdrant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	qc "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aurax/aurax/rag"
)

var (
	_ rag.Store       = (*Store)(nil)
	_ rag.Collections = (*Store)(nil)
)

// Payload keys.
const (
	KeyDocumentID  = "document_id"
	KeyChunk       = "chunk"
	KeyText        = "text"
	KeyMetadata    = "metadata"
	metaEmbedModel = "embed_model"
)

// Options are what config files cannot say.
type Options struct {
	Logger *slog.Logger
	// DialOptions are added to the client's (tests dial bufconn with them).
	DialOptions []grpc.DialOption
	// PoolSize is the number of gRPC connections; 0 means 1.
	PoolSize uint
}

// Store is the Qdrant rag.Store. Close it when done.
type Store struct {
	c   *qc.Client
	cfg rag.QdrantConfig
	log *slog.Logger
}

// New validates cfg and builds a client. It does not contact the server
// (the client connects lazily): use Ping for health.
func New(cfg rag.QdrantConfig, opts Options) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 1
	}
	c, err := qc.NewClient(&qc.Config{
		Host:                   cfg.Host,
		Port:                   cfg.Port,
		APIKey:                 cfg.APIKey,
		UseTLS:                 cfg.TLS,
		GrpcOptions:            opts.DialOptions,
		PoolSize:               opts.PoolSize,
		SkipCompatibilityCheck: true, // it would block New on a down server
	})
	if err != nil {
		return nil, fmt.Errorf("qdrant client %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return &Store{c: c, cfg: cfg, log: opts.Logger.With("component", "rag.qdrant")}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.c.Close() }

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.Timeout > 0 {
		return context.WithTimeout(ctx, s.cfg.Timeout)
	}
	return context.WithCancel(ctx)
}

// mapErr turns gRPC statuses into rag sentinels, keeping the original text.
func mapErr(op, collection string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("qdrant %s %q: %w", op, collection, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		var qe *qc.QdrantError
		if errors.As(err, &qe) {
			st, ok = status.FromError(qe.Unwrap())
		}
	}
	var sentinel error
	if ok {
		msg := strings.ToLower(st.Message())
		switch st.Code() {
		case codes.NotFound:
			if strings.Contains(msg, "collection") || msg == "" {
				sentinel = rag.ErrCollectionNotFound
			}
		case codes.InvalidArgument:
			switch {
			case strings.Contains(msg, "dimension"):
				sentinel = rag.ErrDimensionMismatch
			case strings.Contains(msg, "filter") || strings.Contains(msg, "index required"):
				sentinel = rag.ErrInvalidFilter
			default:
				sentinel = rag.ErrInvalidArgument
			}
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Unauthenticated, codes.PermissionDenied:
			sentinel = rag.ErrUnavailable
		case codes.Canceled:
			sentinel = context.Canceled
		}
	}
	if sentinel != nil {
		return fmt.Errorf("qdrant %s %q: %w: %w", op, collection, sentinel, err)
	}
	return fmt.Errorf("qdrant %s %q: %w", op, collection, err)
}

// Ping calls Qdrant's HealthCheck.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, err := s.c.HealthCheck(ctx); err != nil {
		err = mapErr("health check", "", err)
		if !errors.Is(err, rag.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", rag.ErrUnavailable, err)
		}
		return err
	}
	return nil
}
