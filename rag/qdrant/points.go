package qdrant

import (
	"context"
	"fmt"
	"math"
	"time"

	qc "github.com/qdrant/go-client/qdrant"

	"github.com/aurax/aurax/rag"
)

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
