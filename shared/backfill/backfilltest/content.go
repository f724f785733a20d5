package backfilltest

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"
	"github.com/tendant/simple-content/pkg/simplecontent"
	"github.com/tendant/simple-content/pkg/simplecontent/api"
	"github.com/tendant/simple-content/pkg/simplecontent/objectkey"
	s3store "github.com/tendant/simple-content/pkg/simplecontent/storage/s3"
	"github.com/tendant/simple-content/pkg/simplecontent/urlstrategy"
)

// APIKey is the key the test v5 API accepts (raw Authorization header).
const APIKey = "backfill-test-key"

// Content is simple-content's v5 API, wired as its production image
// (cmd/files) wires it, over a repository of the test's choosing — the
// memory repository or the Postgres one on a StartPostgres cluster — with
// blobs in an in-process S3 server. A test can seed the repository
// directly and read it back through the API, or the other way round.
type Content struct {
	URL   string // base URL; clients append /api/v5
	S3URL string
	Svc   simplecontent.Service
}

// StartContent serves the v5 API over repo until the test ends.
func StartContent(t testing.TB, repo simplecontent.Repository) *Content {
	t.Helper()
	const bucket, backend = "content", "s3-default"
	mem := s3mem.New()
	require.NoError(t, mem.CreateBucket(bucket))
	c := &Content{}
	c.S3URL = serve(t, gofakes3.New(mem, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	blobs, err := s3store.New(s3store.Config{
		Endpoint: c.S3URL, Bucket: bucket, Region: "us-east-1",
		AccessKeyID: "test", SecretAccessKey: "test", PresignDuration: 3600,
	})
	require.NoError(t, err)
	c.Svc, err = simplecontent.New(
		simplecontent.WithRepository(repo),
		simplecontent.WithBlobStore(backend, blobs),
		simplecontent.WithURLStrategy(urlstrategy.NewStorageDelegatedStrategy(map[string]urlstrategy.BlobStore{backend: blobs})),
		simplecontent.WithObjectKeyGenerator(objectkey.NewGitLikeGenerator()),
		simplecontent.WithEventSink(simplecontent.NewNoopEventSink()),
	)
	require.NoError(t, err)
	storage, ok := c.Svc.(simplecontent.StorageService)
	require.True(t, ok, "the service implements StorageService")
	r := chi.NewRouter()
	r.Route("/api/v5", func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if req.Header.Get("Authorization") != APIKey {
					http.Error(w, "invalid api key", http.StatusUnauthorized)
					return
				}
				next.ServeHTTP(w, req)
			})
		})
		r.Mount("/files", api.NewFilesHandler(c.Svc, storage).Routes())
		r.Mount("/contents", api.NewContentHandler(c.Svc, storage).Routes())
	})
	c.URL = serve(t, r)
	return c
}

func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}
