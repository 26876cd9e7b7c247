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
	"math"
	"strings"
	"time"

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

func distance(d rag.Distance) qc.Distance {
	switch d {
	case rag.Dot:
		return qc.Distance_Dot
	case rag.Euclidean:
		return qc.Distance_Euclid
	}
	return qc.Distance_Cosine
}

func fromDistance(d qc.Distance) rag.Distance {
	switch d {
	case qc.Distance_Dot:
		return rag.Dot
	case qc.Distance_Euclid:
		return rag.Euclidean
	}
	return rag.Cosine
}

// CreateRequest is the CreateCollection request EnsureCollection sends for
// spec: the configured shard, replication, write consistency and HNSW
// settings.
func (s *Store) CreateRequest(spec rag.CollectionSpec) *qc.CreateCollection {
	req := &qc.CreateCollection{
		CollectionName: spec.Name,
		VectorsConfig: qc.NewVectorsConfig(&qc.VectorParams{
			Size:     uint64(spec.Dimension),
			Distance: distance(spec.Distance),
		}),
		ShardNumber:            qc.PtrOf(uint32(s.cfg.ShardNumber)),
		ReplicationFactor:      qc.PtrOf(uint32(s.cfg.ReplicationFactor)),
		WriteConsistencyFactor: qc.PtrOf(uint32(s.cfg.WriteConsistencyFactor)),
	}
	if s.cfg.OnDiskPayload {
		req.OnDiskPayload = qc.PtrOf(true)
	}
	if s.cfg.HNSW.M > 0 || s.cfg.HNSW.EfConstruct > 0 {
		req.HnswConfig = &qc.HnswConfigDiff{}
		if s.cfg.HNSW.M > 0 {
			req.HnswConfig.M = qc.PtrOf(uint64(s.cfg.HNSW.M))
		}
		if s.cfg.HNSW.EfConstruct > 0 {
			req.HnswConfig.EfConstruct = qc.PtrOf(uint64(s.cfg.HNSW.EfConstruct))
		}
	}
	if spec.EmbedModel != "" {
		req.Metadata = map[string]*qc.Value{metaEmbedModel: qc.NewValueString(spec.EmbedModel)}
	}
	return req
}

// EnsureCollection implements rag.Writer: creates the collection and its
// payload indexes, or checks an existing one's dimension and distance.
func (s *Store) EnsureCollection(ctx context.Context, spec rag.CollectionSpec) (bool, error) {
	if spec.Distance == "" {
		spec.Distance = rag.Cosine
	}
	if err := spec.Validate(); err != nil {
		return false, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	info, err := s.info(ctx, spec.Name)
	switch {
	case err == nil:
		return false, compatible(info.CollectionSpec, spec)
	case !errors.Is(err, rag.ErrCollectionNotFound):
		return false, err
	}
	if err := s.c.CreateCollection(ctx, s.CreateRequest(spec)); err != nil {
		if status.Code(errors.Unwrap(err)) == codes.AlreadyExists || strings.Contains(err.Error(), "already exists") {
			info, ierr := s.info(ctx, spec.Name) // lost a race: check it
			if ierr != nil {
				return false, ierr
			}
			return false, compatible(info.CollectionSpec, spec)
		}
		return false, mapErr("create collection", spec.Name, err)
	}
	for _, ix := range s.indexRequests(spec.Name) {
		if _, err := s.c.CreateFieldIndex(ctx, ix); err != nil {
			return true, mapErr("create payload index "+ix.FieldName, spec.Name, err)
		}
	}
	s.log.Info("collection created", "collection", spec.Name, "dimension", spec.Dimension, "distance", spec.Distance)
	return true, nil
}

// indexRequests are the payload indexes every collection gets.
func (s *Store) indexRequests(collection string) []*qc.CreateFieldIndexCollection {
	mk := func(field string, t qc.FieldType) *qc.CreateFieldIndexCollection {
		return &qc.CreateFieldIndexCollection{CollectionName: collection, FieldName: field, FieldType: qc.PtrOf(t), Wait: qc.PtrOf(true)}
	}
	out := []*qc.CreateFieldIndexCollection{
		mk(KeyDocumentID, qc.FieldType_FieldTypeKeyword),
		mk(KeyChunk, qc.FieldType_FieldTypeInteger),
	}
	for _, f := range s.cfg.IndexedFields {
		out = append(out, mk(KeyMetadata+"."+f, qc.FieldType_FieldTypeKeyword))
	}
	return out
}

func compatible(have, want rag.CollectionSpec) error {
	if have.Dimension != want.Dimension {
		return &rag.DimensionError{Collection: have.Name, Want: have.Dimension, Got: want.Dimension}
	}
	if have.Distance != want.Distance {
		return fmt.Errorf("%w: collection %q exists with distance %s, not %s", rag.ErrInvalidArgument, have.Name, have.Distance, want.Distance)
	}
	return nil
}

func (s *Store) info(ctx context.Context, name string) (rag.CollectionInfo, error) {
	ci, err := s.c.GetCollectionInfo(ctx, name)
	if err != nil {
		return rag.CollectionInfo{}, mapErr("get collection", name, err)
	}
	out := rag.CollectionInfo{CollectionSpec: rag.CollectionSpec{Name: name}}
	if p := ci.GetConfig().GetParams().GetVectorsConfig().GetParams(); p != nil {
		out.Dimension = int(p.GetSize())
		out.Distance = fromDistance(p.GetDistance())
	}
	if v, ok := ci.GetConfig().GetMetadata()[metaEmbedModel]; ok {
		out.EmbedModel = v.GetStringValue()
	}
	out.Points = int(ci.GetPointsCount())
	return out, nil
}

// ListCollections implements rag.Collections.
func (s *Store) ListCollections(ctx context.Context) ([]rag.CollectionInfo, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	names, err := s.c.ListCollections(ctx)
	if err != nil {
		return nil, mapErr("list collections", "", err)
	}
	out := make([]rag.CollectionInfo, 0, len(names))
	for _, n := range names {
		info, err := s.info(ctx, n)
		if errors.Is(err, rag.ErrCollectionNotFound) {
			continue // dropped meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// DeleteCollection implements rag.Collections.
func (s *Store) DeleteCollection(ctx context.Context, name string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	ok, err := s.c.CollectionExists(ctx, name)
	if err != nil {
		return mapErr("collection exists", name, err)
	}
	if !ok {
		return fmt.Errorf("qdrant delete collection %q: %w", name, rag.ErrCollectionNotFound)
	}
	return mapErr("delete collection", name, s.c.DeleteCollection(ctx, name))
}

// Count implements rag.Store (exact count).
func (s *Store) Count(ctx context.Context, collection string) (int, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := s.c.Count(ctx, &qc.CountPoints{CollectionName: collection, Exact: qc.PtrOf(true)})
	return int(n), mapErr("count", collection, err)
}

// payloadValue stores integral numbers as integers so MatchInt filters hit.
func payloadValue(v any) any {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return v
}

// Upsert implements rag.Writer.
func (s *Store) Upsert(ctx context.Context, collection string, points []rag.Point) error {
	if len(points) == 0 {
		return nil
	}
	pts := make([]*qc.PointStruct, len(points))
	for i := range points {
		p := &points[i]
		if err := p.Validate(collection, len(points[0].Vector)); err != nil {
			return err
		}
		md := make(map[string]any, len(p.Metadata))
		for k, v := range p.Metadata {
			md[k] = payloadValue(v)
		}
		payload, err := qc.TryValueMap(map[string]any{
			KeyDocumentID: p.DocumentID,
			KeyChunk:      int64(p.Chunk),
			KeyText:       p.Text,
			KeyMetadata:   md,
		})
		if err != nil {
			return fmt.Errorf("%w: payload of %q chunk %d: %v", rag.ErrInvalidArgument, p.DocumentID, p.Chunk, err)
		}
		pts[i] = &qc.PointStruct{
			Id:      qc.NewID(rag.PointID(collection, p.DocumentID, p.Chunk)),
			Vectors: qc.NewVectorsDense(p.Vector),
			Payload: payload,
		}
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.c.Upsert(ctx, &qc.UpsertPoints{CollectionName: collection, Wait: qc.PtrOf(true), Points: pts})
	return mapErr("upsert", collection, err)
}

// DeleteChunks implements rag.Writer with one filtered delete.
func (s *Store) DeleteChunks(ctx context.Context, collection, documentID string, fromChunk int) error {
	if err := rag.ValidateDocumentID(documentID); err != nil {
		return err
	}
	if fromChunk < 0 {
		return fmt.Errorf("%w: fromChunk %d", rag.ErrInvalidArgument, fromChunk)
	}
	f := &qc.Filter{Must: []*qc.Condition{qc.NewMatchKeyword(KeyDocumentID, documentID)}}
	if fromChunk > 0 {
		f.Must = append(f.Must, qc.NewRange(KeyChunk, &qc.Range{Gte: qc.PtrOf(float64(fromChunk))}))
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.c.Delete(ctx, &qc.DeletePoints{CollectionName: collection, Wait: qc.PtrOf(true), Points: qc.NewPointsSelectorFilter(f)})
	return mapErr("delete chunks", collection, err)
}

// Filter translates a rag.Filter: every key must match (Must); a list is
// any-of. Strings are keyword matches, bools boolean, integral numbers
// integer matches, other numbers a closed range.
func Filter(f rag.Filter) (*qc.Filter, error) {
	if len(f) == 0 {
		return nil, nil
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	out := &qc.Filter{}
	for _, k := range f.Keys() {
		field := KeyMetadata + "." + k
		vals, _ := f.FilterValues(k)
		var strs []string
		var ints []int64
		var conds []*qc.Condition
		for _, v := range vals {
			switch x := v.(type) {
			case string:
				strs = append(strs, x)
			case bool:
				conds = append(conds, qc.NewMatchBool(field, x))
			case float64:
				if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
					ints = append(ints, int64(x))
				} else {
					conds = append(conds, qc.NewRange(field, &qc.Range{Gte: qc.PtrOf(x), Lte: qc.PtrOf(x)}))
				}
			}
		}
		switch len(strs) {
		case 0:
		case 1:
			conds = append(conds, qc.NewMatchKeyword(field, strs[0]))
		default:
			conds = append(conds, qc.NewMatchKeywords(field, strs...))
		}
		switch len(ints) {
		case 0:
		case 1:
			conds = append(conds, qc.NewMatchInt(field, ints[0]))
		default:
			conds = append(conds, qc.NewMatchInts(field, ints...))
		}
		if len(conds) == 1 {
			out.Must = append(out.Must, conds[0])
		} else {
			out.Must = append(out.Must, qc.NewFilterAsCondition(&qc.Filter{Should: conds}))
		}
	}
	return out, nil
}

// Search implements rag.Searcher with the Query API.
func (s *Store) Search(ctx context.Context, collection string, q rag.Query) ([]rag.Hit, error) {
	if err := q.Normalize(); err != nil {
		return nil, err
	}
	f, err := Filter(q.Filter)
	if err != nil {
		return nil, err
	}
	req := &qc.QueryPoints{
		CollectionName: collection,
		Query:          qc.NewQueryDense(q.Vector),
		Limit:          qc.PtrOf(uint64(q.TopK)),
		Filter:         f,
		WithPayload:    qc.NewWithPayload(true),
	}
	if q.MinScore != nil {
		req.ScoreThreshold = qc.PtrOf(float32(*q.MinScore))
	}
	if s.cfg.HNSW.Ef > 0 {
		req.Params = &qc.SearchParams{HnswEf: qc.PtrOf(uint64(s.cfg.HNSW.Ef))}
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	start := time.Now()
	res, err := s.c.Query(ctx, req)
	if err != nil {
		return nil, mapErr("query", collection, err)
	}
	hits := make([]rag.Hit, 0, len(res))
	for _, p := range res {
		pl := p.GetPayload()
		h := rag.Hit{
			DocumentID: pl[KeyDocumentID].GetStringValue(),
			Chunk:      int(pl[KeyChunk].GetIntegerValue()),
			Score:      float64(p.GetScore()),
			Text:       pl[KeyText].GetStringValue(),
		}
		if st := pl[KeyMetadata].GetStructValue(); st != nil && len(st.GetFields()) > 0 {
			h.Metadata = make(rag.Metadata, len(st.GetFields()))
			for k, v := range st.GetFields() {
				h.Metadata[k] = toAny(v)
			}
		}
		hits = append(hits, h)
	}
	s.log.Debug("query", "collection", collection, "hits", len(hits), "took", time.Since(start))
	return hits, nil
}

// toAny converts a payload scalar; integers become float64 like JSON numbers.
func toAny(v *qc.Value) any {
	switch k := v.GetKind().(type) {
	case *qc.Value_StringValue:
		return k.StringValue
	case *qc.Value_BoolValue:
		return k.BoolValue
	case *qc.Value_IntegerValue:
		return float64(k.IntegerValue)
	case *qc.Value_DoubleValue:
		return k.DoubleValue
	}
	return nil
}
