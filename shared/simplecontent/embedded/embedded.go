// Package embedded runs simple-content in-process: the real v5 handlers of
// github.com/tendant/simple-content (the code its production image,
// cmd/files, serves) over a memory repository, with blobs in an in-process
// S3 server (gofakes3). `ocrflow run` uses it as its local content store,
// and the contract tests run against it, so neither needs Postgres or
// MinIO. Everything lives in memory and is gone after Close.
package embedded

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/tendant/simple-content/pkg/simplecontent"
	"github.com/tendant/simple-content/pkg/simplecontent/api"
	"github.com/tendant/simple-content/pkg/simplecontent/objectkey"
	"github.com/tendant/simple-content/pkg/simplecontent/repo/memory"
	s3store "github.com/tendant/simple-content/pkg/simplecontent/storage/s3"
	"github.com/tendant/simple-content/pkg/simplecontent/urlstrategy"
)

// BackendName is the storage backend name cmd/files registers, and the
// default of the v5 handlers.
const BackendName = "s3-default"

// Config configures the embedded server.
type Config struct {
	// APIKey is the key clients send as the raw Authorization header
	// (default: a random key, see Server.APIKey).
	APIKey string
	// Bucket is the S3 bucket simple-content stores blobs in (default
	// "content").
	Bucket string
	// APIMiddleware and S3Middleware, when set, wrap the API and the S3
	// handler — for observing traffic or injecting faults in tests.
	APIMiddleware func(http.Handler) http.Handler
	S3Middleware  func(http.Handler) http.Handler
}

// Server is a running embedded simple-content.
type Server struct {
	apiKey, bucket string
	api, s3        *http.Server
	apiURL, s3URL  string
	s3mem          *s3mem.Backend
}

// Start starts the S3 server and the v5 API on loopback ports.
func Start(cfg Config) (*Server, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = "content"
	}
	if cfg.APIKey == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("embedded simple-content: api key: %w", err)
		}
		cfg.APIKey = hex.EncodeToString(b)
	}
	s := &Server{apiKey: cfg.APIKey, bucket: cfg.Bucket, s3mem: s3mem.New()}
	if err := s.s3mem.CreateBucket(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("embedded simple-content: create bucket: %w", err)
	}
	s3h := gofakes3.New(s.s3mem, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	if cfg.S3Middleware != nil {
		s3h = cfg.S3Middleware(s3h)
	}
	s3ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded simple-content: listen s3: %w", err)
	}
	s.s3URL = "http://" + s3ln.Addr().String()
	s.s3 = serve(s3ln, s3h)

	h, err := s.handler(cfg)
	if err != nil {
		return nil, errors.Join(err, s.s3.Close())
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded simple-content: listen api: %w", err), s.s3.Close())
	}
	s.apiURL = "http://" + apiLn.Addr().String()
	s.api = serve(apiLn, h)
	return s, nil
}

func serve(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}

// handler builds the v5 API exactly as cmd/files wires it, with a memory
// repository instead of Postgres.
func (s *Server) handler(cfg Config) (http.Handler, error) {
	blobs, err := s3store.New(s3store.Config{
		Endpoint: s.s3URL, Bucket: cfg.Bucket, Region: "us-east-1",
		AccessKeyID: "embedded", SecretAccessKey: "embedded", UseSSL: false,
		PresignDuration: int((6 * time.Hour).Seconds()),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded simple-content: s3 backend: %w", err)
	}
	repo := memory.New()
	svc, err := simplecontent.New(
		simplecontent.WithRepository(repo),
		simplecontent.WithBlobStore(BackendName, blobs),
		simplecontent.WithURLStrategy(urlstrategy.NewStorageDelegatedStrategy(map[string]urlstrategy.BlobStore{BackendName: blobs})),
		simplecontent.WithObjectKeyGenerator(objectkey.NewGitLikeGenerator()),
		simplecontent.WithEventSink(simplecontent.NewNoopEventSink()),
	)
	if err != nil {
		return nil, fmt.Errorf("embedded simple-content: service: %w", err)
	}
	storage, ok := svc.(simplecontent.StorageService)
	if !ok {
		return nil, errors.New("embedded simple-content: service does not implement StorageService")
	}
	r := chi.NewRouter()
	ok200 := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("OK"))
	}
	r.Get("/healthz", ok200)
	r.Get("/healthz/ready", ok200)
	r.Route("/api/v5", func(r chi.Router) {
		r.Use(apiKey(cfg.APIKey))
		r.Mount("/files", api.NewFilesHandler(svc, storage).Routes())
		r.Mount("/contents", api.NewContentHandler(svc, storage).Routes())
	})
	var h http.Handler = r
	if cfg.APIMiddleware != nil {
		h = cfg.APIMiddleware(h)
	}
	return h, nil
}

// apiKey is cmd/files' check: the trimmed Authorization header, SHA-256'd,
// must equal the configured key's hash; else 401 "invalid api key".
func apiKey(key string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(key))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := sha256.Sum256([]byte(strings.TrimSpace(r.Header.Get("Authorization"))))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				http.Error(w, "invalid api key", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// URL is the base URL of the API (clients append /api/v5).
func (s *Server) URL() string { return s.apiURL }

// S3URL is the endpoint of the in-process S3 server (path-style).
func (s *Server) S3URL() string { return s.s3URL }

// Bucket is the bucket simple-content stores blobs in.
func (s *Server) Bucket() string { return s.bucket }

// APIKey is the key the API accepts.
func (s *Server) APIKey() string { return s.apiKey }

// CreateBucket adds a bucket to the in-process S3 server (for s3://
// sources outside simple-content's bucket).
func (s *Server) CreateBucket(name string) error { return s.s3mem.CreateBucket(name) }

// Close stops both servers, waiting for in-flight requests until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	return errors.Join(s.api.Shutdown(ctx), s.s3.Shutdown(ctx))
}
