package qdrant

import (
	"context"
	"errors"
	"fmt"
	"strings"

	qc "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aurax/aurax/rag"
)

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
		return false, info.CollectionSpec.Compatible(spec)
	case !errors.Is(err, rag.ErrCollectionNotFound):
		return false, err
	}
	if err := s.c.CreateCollection(ctx, s.CreateRequest(spec)); err != nil {
		if status.Code(errors.Unwrap(err)) == codes.AlreadyExists || strings.Contains(err.Error(), "already exists") {
			info, ierr := s.info(ctx, spec.Name) // lost a race: check it
			if ierr != nil {
				return false, ierr
			}
			return false, info.CollectionSpec.Compatible(spec)
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
