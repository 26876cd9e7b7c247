package qdrant

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	qc "github.com/qdrant/go-client/qdrant"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/aurax/aurax/rag"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder keeps every request the fake services receive.
type recorder struct {
	mu       sync.Mutex
	creates  []*qc.CreateCollection
	indexes  []*qc.CreateFieldIndexCollection
	upserts  []*qc.UpsertPoints
	deletes  []*qc.DeletePoints
	queries  []*qc.QueryPoints
	exists   bool
	queryErr error
	result   []*qc.ScoredPoint
}

type fakeCollections struct {
	qc.UnimplementedCollectionsServer
	r *recorder
}

func (f *fakeCollections) Get(_ context.Context, req *qc.GetCollectionInfoRequest) (*qc.GetCollectionInfoResponse, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if !f.r.exists {
		return nil, status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", req.CollectionName)
	}
	c := f.r.creates[len(f.r.creates)-1]
	return &qc.GetCollectionInfoResponse{Result: &qc.CollectionInfo{
		Config: &qc.CollectionConfig{
			Params:   &qc.CollectionParams{VectorsConfig: c.VectorsConfig},
			Metadata: c.Metadata,
		},
		PointsCount: qc.PtrOf(uint64(7)),
	}}, nil
}

func (f *fakeCollections) Create(_ context.Context, req *qc.CreateCollection) (*qc.CollectionOperationResponse, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.r.creates = append(f.r.creates, req)
	f.r.exists = true
	return &qc.CollectionOperationResponse{Result: true}, nil
}

type fakePoints struct {
	qc.UnimplementedPointsServer
	r *recorder
}

func (f *fakePoints) CreateFieldIndex(_ context.Context, req *qc.CreateFieldIndexCollection) (*qc.PointsOperationResponse, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.r.indexes = append(f.r.indexes, req)
	return &qc.PointsOperationResponse{Result: &qc.UpdateResult{Status: qc.UpdateStatus_Completed}}, nil
}

func (f *fakePoints) Upsert(_ context.Context, req *qc.UpsertPoints) (*qc.PointsOperationResponse, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.r.upserts = append(f.r.upserts, req)
	return &qc.PointsOperationResponse{Result: &qc.UpdateResult{Status: qc.UpdateStatus_Completed}}, nil
}

func (f *fakePoints) Delete(_ context.Context, req *qc.DeletePoints) (*qc.PointsOperationResponse, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.r.deletes = append(f.r.deletes, req)
	return &qc.PointsOperationResponse{Result: &qc.UpdateResult{Status: qc.UpdateStatus_Completed}}, nil
}

func (f *fakePoints) Query(_ context.Context, req *qc.QueryPoints) (*qc.QueryResponse, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.r.queries = append(f.r.queries, req)
	if f.r.queryErr != nil {
		return nil, f.r.queryErr
	}
	return &qc.QueryResponse{Result: f.r.result}, nil
}

type fakeQdrant struct {
	qc.UnimplementedQdrantServer
}

func (fakeQdrant) HealthCheck(context.Context, *qc.HealthCheckRequest) (*qc.HealthCheckReply, error) {
	return &qc.HealthCheckReply{Title: "qdrant - vector search engine", Version: "1.19.0"}, nil
}

// newFake serves the official generated services on bufconn and returns a
// Store connected to them (FACTS.md recipe).
func newFake(t *testing.T, cfg rag.QdrantConfig) (*Store, *recorder) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	r := &recorder{}
	qc.RegisterCollectionsServer(srv, &fakeCollections{r: r})
	qc.RegisterPointsServer(srv, &fakePoints{r: r})
	qc.RegisterQdrantServer(srv, fakeQdrant{})
	go srv.Serve(lis)
	cfg.Host = "passthrough:///fake"
	s, err := New(cfg, Options{DialOptions: []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, PoolSize: 1})
	require.NoError(t, err)
	t.Cleanup(func() {
		s.Close()
		srv.Stop()
	})
	return s, r
}

func testConfig() rag.QdrantConfig {
	cfg := rag.DefaultQdrantConfig()
	cfg.HNSW = rag.HNSW{M: 32, EfConstruct: 200, Ef: 128}
	cfg.IndexedFields = []string{"lang"}
	cfg.Timeout = 5 * time.Second
	return cfg
}

func TestNewWithoutServer(t *testing.T) {
	cfg := rag.DefaultQdrantConfig()
	cfg.Host, cfg.Port, cfg.Timeout = "127.0.0.1", 1, 2*time.Second
	s, err := New(cfg, Options{})
	require.NoError(t, err, "New must not need a server")
	defer s.Close()
	require.ErrorIs(t, s.Ping(context.Background()), rag.ErrUnavailable)
}

func TestEnsureCollectionSendsSeedSettings(t *testing.T) {
	ctx := context.Background()
	s, r := newFake(t, testConfig())
	require.NoError(t, s.Ping(ctx))

	created, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "docs", Dimension: 384, EmbedModel: "aurax-tiny-embed"})
	require.NoError(t, err)
	require.True(t, created)
	require.Len(t, r.creates, 1)
	want := &qc.CreateCollection{
		CollectionName:         "docs",
		VectorsConfig:          qc.NewVectorsConfig(&qc.VectorParams{Size: 384, Distance: qc.Distance_Cosine}),
		ShardNumber:            qc.PtrOf(uint32(4)),
		ReplicationFactor:      qc.PtrOf(uint32(2)),
		WriteConsistencyFactor: qc.PtrOf(uint32(1)),
		HnswConfig:             &qc.HnswConfigDiff{M: qc.PtrOf(uint64(32)), EfConstruct: qc.PtrOf(uint64(200))},
		Metadata:               map[string]*qc.Value{"embed_model": qc.NewValueString("aurax-tiny-embed")},
	}
	require.True(t, proto.Equal(want, r.creates[0]), "CreateCollection = %v; want %v", r.creates[0], want)

	var fields []string
	for _, ix := range r.indexes {
		fields = append(fields, ix.FieldName+":"+ix.GetFieldType().String())
	}
	require.Equal(t, []string{"document_id:FieldTypeKeyword", "chunk:FieldTypeInteger", "metadata.lang:FieldTypeKeyword"}, fields)

	// Second call: exists, compatible, nothing created.
	created, err = s.EnsureCollection(ctx, rag.CollectionSpec{Name: "docs", Dimension: 384})
	require.NoError(t, err)
	require.False(t, created)
	_, err = s.EnsureCollection(ctx, rag.CollectionSpec{Name: "docs", Dimension: 768})
	require.ErrorIs(t, err, rag.ErrDimensionMismatch)
	require.Len(t, r.creates, 1)

	infos, err := s.ListCollections(ctx)
	require.Error(t, err, "List is not faked: the error must surface") // Unimplemented
	require.Nil(t, infos)
}

func TestUpsertPayloadsAndIDs(t *testing.T) {
	ctx := context.Background()
	s, r := newFake(t, testConfig())
	err := s.Upsert(ctx, "docs", []rag.Point{
		{DocumentID: "guide.md", Chunk: 0, Text: "hello", Vector: []float32{1, 0}, Metadata: rag.Metadata{"lang": "en", "year": 2024.0, "draft": false}},
		{DocumentID: "guide.md", Chunk: 1, Text: "world", Vector: []float32{0, 1}},
	})
	require.NoError(t, err)
	require.Len(t, r.upserts, 1)
	u := r.upserts[0]
	require.Equal(t, "docs", u.CollectionName)
	require.True(t, u.GetWait())
	require.Len(t, u.Points, 2)
	p := u.Points[0]
	require.Equal(t, rag.PointID("docs", "guide.md", 0), p.Id.GetUuid())
	require.NotEqual(t, p.Id.GetUuid(), u.Points[1].Id.GetUuid())
	require.Equal(t, []float32{1, 0}, p.GetVectors().GetVector().GetDense().GetData())
	want := map[string]*qc.Value{
		"document_id": qc.NewValueString("guide.md"),
		"chunk":       qc.NewValueInt(0),
		"text":        qc.NewValueString("hello"),
		"metadata": qc.NewValueFromFields(map[string]*qc.Value{
			"lang": qc.NewValueString("en"), "year": qc.NewValueInt(2024), "draft": qc.NewValueBool(false),
		}),
	}
	for k, v := range want {
		require.True(t, proto.Equal(v, p.Payload[k]), "payload[%s] = %v; want %v", k, p.Payload[k], v)
	}
	require.Len(t, p.Payload, len(want))

	// Bad input never reaches the server.
	require.ErrorIs(t, s.Upsert(ctx, "docs", []rag.Point{{DocumentID: "", Vector: []float32{1}}}), rag.ErrInvalidArgument)
	require.Len(t, r.upserts, 1)
}

func TestDeleteChunksFilter(t *testing.T) {
	ctx := context.Background()
	s, r := newFake(t, testConfig())
	require.NoError(t, s.DeleteChunks(ctx, "docs", "a.md", 3))
	require.NoError(t, s.DeleteChunks(ctx, "docs", "a.md", 0))
	require.Len(t, r.deletes, 2)
	want := &qc.Filter{Must: []*qc.Condition{
		qc.NewMatchKeyword("document_id", "a.md"),
		qc.NewRange("chunk", &qc.Range{Gte: qc.PtrOf(3.0)}),
	}}
	require.True(t, proto.Equal(want, r.deletes[0].GetPoints().GetFilter()), "delete filter = %v", r.deletes[0].GetPoints().GetFilter())
	require.True(t, r.deletes[0].GetWait())
	require.Len(t, r.deletes[1].GetPoints().GetFilter().Must, 1)
}

func TestSearchSendsQueryAndMapsHits(t *testing.T) {
	ctx := context.Background()
	s, r := newFake(t, testConfig())
	r.result = []*qc.ScoredPoint{{
		Id:    qc.NewID(rag.PointID("docs", "a.md", 2)),
		Score: 0.875,
		Payload: map[string]*qc.Value{
			"document_id": qc.NewValueString("a.md"),
			"chunk":       qc.NewValueInt(2),
			"text":        qc.NewValueString("chunk text"),
			"metadata":    qc.NewValueFromFields(map[string]*qc.Value{"lang": qc.NewValueString("en"), "year": qc.NewValueInt(2024)}),
		},
	}}
	min := 0.5
	hits, err := s.Search(ctx, "docs", rag.Query{
		Vector: []float32{0.1, 0.2}, TopK: 3, MinScore: &min,
		Filter: rag.Filter{"lang": "en", "year": []any{2024.0, 2025.0}, "draft": false, "w": 0.5},
	})
	require.NoError(t, err)
	require.Equal(t, []rag.Hit{{DocumentID: "a.md", Chunk: 2, Score: 0.875, Text: "chunk text", Metadata: rag.Metadata{"lang": "en", "year": 2024.0}}}, hits)

	q := r.queries[0]
	require.Equal(t, "docs", q.CollectionName)
	require.Equal(t, uint64(3), q.GetLimit())
	require.Equal(t, float32(0.5), q.GetScoreThreshold())
	require.Equal(t, uint64(128), q.GetParams().GetHnswEf())
	require.Equal(t, []float32{0.1, 0.2}, q.GetQuery().GetNearest().GetDense().GetData())
	require.True(t, q.GetWithPayload().GetEnable())
	wantFilter := &qc.Filter{Must: []*qc.Condition{ // keys sorted
		qc.NewMatchBool("metadata.draft", false),
		qc.NewMatchKeyword("metadata.lang", "en"),
		qc.NewRange("metadata.w", &qc.Range{Gte: qc.PtrOf(0.5), Lte: qc.PtrOf(0.5)}),
		qc.NewMatchInts("metadata.year", 2024, 2025),
	}}
	require.True(t, proto.Equal(wantFilter, q.Filter), "filter = %v", q.Filter)
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"not found", status.Error(codes.NotFound, "Not found: Collection `docs` doesn't exist!"), rag.ErrCollectionNotFound},
		{"dimension", status.Error(codes.InvalidArgument, "Wrong input: Vector dimension error: expected dim: 384, got 3"), rag.ErrDimensionMismatch},
		{"bad filter", status.Error(codes.InvalidArgument, "Bad request: Index required but not found for \"metadata.x\""), rag.ErrInvalidFilter},
		{"unavailable", status.Error(codes.Unavailable, "overloaded"), rag.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := newFake(t, testConfig())
			r.queryErr = tt.err
			_, err := s.Search(ctx, "docs", rag.Query{Vector: []float32{1}})
			require.ErrorIs(t, err, tt.want)
		})
	}
	s, _ := newFake(t, testConfig())
	_, err := s.Search(ctx, "docs", rag.Query{Vector: []float32{1}, Filter: rag.Filter{"x": map[string]any{}}})
	require.ErrorIs(t, err, rag.ErrInvalidFilter)
}
