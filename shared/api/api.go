// Package api is ocrflow's HTTP API (`ocrflow api`): submit jobs, read
// their status from durable state, follow their lifecycle as Server-Sent
// Events, and OCR a document synchronously through the same stages run in
// process. Errors are RFC 9457 problem details; every request has an id
// (X-Request-Id) that every log line of it carries; bearer tokens bind
// callers to tenants; CORS is off unless origins are configured; and
// GET /openapi.json describes every route.
//
// The package holds no stage and no transport: the command wires it to a
// publisher (the standalone runtime or a broker ingress), a follower of
// lifecycle events, the scratch store, and the synchronous runner
// (shared/inproc).
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/inproc"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Publisher publishes a job event: the standalone runtime (NATS) or a
// broker ingress sender.
type Publisher interface {
	Send(ctx context.Context, e event.Event) error
}

// Syncer runs one document through the in-process pipeline
// (inproc.Runner).
type Syncer interface {
	Run(ctx context.Context, doc inproc.Document) (inproc.Result, error)
}

// Check is one dependency GET /readyz probes.
type Check struct {
	// Name is the dependency: transport, scratch, content, engine.
	Name string
	// Target says what is probed (a URL without credentials, a path).
	Target string
	// Probe returns nil when the dependency is usable.
	Probe func(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	// Scratch is the scratch store jobs' state is read from (required).
	Scratch scratch.Store
	// Publisher publishes submitted jobs (required).
	Publisher Publisher
	// Follow, when set, delivers the lifecycle events published from now
	// on until ctx ends (the standalone runtime's ocr.job.> subjects);
	// without it, event streams poll the job's status.
	Follow func(ctx context.Context) (<-chan event.Event, error)
	// Sync runs POST /v1/ocr; nil answers 503.
	Sync Syncer
	// Checks are what GET /readyz probes.
	Checks []Check
	// Tokens maps bearer tokens to their tenant (API_TOKENS); empty
	// turns authentication off.
	Tokens map[string]string
	// CORSOrigins are the origins browsers may call from
	// (CORS_ALLOWED_ORIGINS; "*" allows any); empty turns CORS off.
	CORSOrigins []string
	// SyncMaxBytes bounds a POST /v1/ocr document (SYNC_MAX_BYTES).
	SyncMaxBytes int64
	// SyncTimeout bounds a POST /v1/ocr run (SYNC_TIMEOUT).
	SyncTimeout time.Duration
	// TempDir holds the documents of POST /v1/ocr while they run
	// (default os.TempDir()).
	TempDir string
	// PollInterval is how often an event stream without Follow reads the
	// job's status (default 1s).
	PollInterval time.Duration
	// KeepAlive is how often an idle event stream sends a comment, so
	// proxies keep it open (default 15s).
	KeepAlive time.Duration
	// Metrics, when set, is served at GET /metrics (no token needed).
	Metrics http.Handler
	// Log receives the request logs; nil discards them.
	Log *slog.Logger
	// Now is the clock status reads use (default time.Now).
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultSyncMaxBytes = 20 << 20
	DefaultSyncTimeout  = 2 * time.Minute
	DefaultPoll         = time.Second
	DefaultKeepAlive    = 15 * time.Second
	// MaxJobBytes bounds a POST /v1/jobs body.
	MaxJobBytes = 1 << 20
)

// Route is a registered route: a method and a net/http path pattern.
type Route struct {
	Method  string
	Pattern string
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	routes  []Route
	handler http.Handler
	// streams ends every event stream when the server shuts down.
	streams    context.Context
	endStreams context.CancelFunc
}

// New returns the API server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Scratch == nil || cfg.Publisher == nil {
		return nil, errors.New("api: a scratch store and a publisher are required")
	}
	if cfg.SyncMaxBytes <= 0 {
		cfg.SyncMaxBytes = DefaultSyncMaxBytes
	}
	if cfg.SyncTimeout <= 0 {
		cfg.SyncTimeout = DefaultSyncTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPoll
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, o := range cfg.CORSOrigins {
		if o != "*" && !validOrigin(o) {
			return nil, fmt.Errorf("api: CORS origin %q is not scheme://host[:port] or *", o)
		}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: slog.New(contextHandler{log.Handler()})}
	s.streams, s.endStreams = context.WithCancel(context.Background())

	mux := http.NewServeMux()
	table := []struct {
		Route
		h http.HandlerFunc
	}{
		{Route{http.MethodGet, "/healthz"}, s.healthz},
		{Route{http.MethodGet, "/readyz"}, s.readyz},
		{Route{http.MethodGet, "/openapi.json"}, s.openapi},
		{Route{http.MethodPost, "/v1/jobs"}, s.submit},
		{Route{http.MethodGet, "/v1/jobs/{id}"}, s.job},
		{Route{http.MethodGet, "/v1/jobs/{id}/events"}, s.jobEvents},
		{Route{http.MethodPost, "/v1/ocr"}, s.ocr},
	}
	if cfg.Metrics != nil {
		table = append(table, struct {
			Route
			h http.HandlerFunc
		}{Route{http.MethodGet, "/metrics"}, cfg.Metrics.ServeHTTP})
	}
	methods := map[string][]string{}
	for _, rt := range table {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, rt.h)
		s.routes = append(s.routes, rt.Route)
		methods[rt.Pattern] = append(methods[rt.Pattern], rt.Method)
	}
	// A known path with another method, and an unknown path, answer with
	// problems too (the mux's own answers are plain text).
	for pattern, ms := range methods {
		allow := strings.Join(append(slices.Clone(ms), http.MethodHead), ", ")
		if !slices.Contains(ms, http.MethodGet) {
			allow = strings.Join(ms, ", ")
		}
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			s.writeProblem(w, r, http.StatusMethodNotAllowed, ProblemMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, http.StatusNotFound, ProblemNotFound, "no such route: "+r.URL.Path)
	})
	sort.Slice(s.routes, func(i, j int) bool {
		if s.routes[i].Pattern != s.routes[j].Pattern {
			return s.routes[i].Pattern < s.routes[j].Pattern
		}
		return s.routes[i].Method < s.routes[j].Method
	})
	s.handler = s.requestID(s.recover(s.cors(s.authenticate(mux))))
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes returns the routes the server registers, sorted.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// Serve answers on l until ctx ends, then shuts down gracefully: it stops
// accepting, ends the event streams, and waits for the requests in flight
// up to shutdownTimeout before it closes their connections.
func (s *Server) Serve(ctx context.Context, l net.Listener, shutdownTimeout time.Duration) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(s.endStreams)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		s.endStreams()
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("api stopping: finishing requests in flight", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("api: shutdown: %w", err), srv.Close())
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Request ids.

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// HeaderRequestID is the request id header, honoured when it is valid and
// set on every response.
const HeaderRequestID = "X-Request-Id"

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// requestID gives every request an id (the caller's X-Request-Id when it
// is a reasonable one), echoes it, puts it into every log line of the
// request, and logs the request when it is answered.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = WithLogAttrs(ctx, slog.String("request_id", id))
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(ctx))
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		s.log.Log(ctx, level, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"bytes", rec.bytes, "ms", time.Since(start).Milliseconds())
	})
}

// recorder notes the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	written bool
}

// WriteHeader notes the first status written.
func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes written.
func (r *recorder) Write(b []byte) (int, error) {
	r.written = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (Flush for
// event streams).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// recover turns a panic in a handler into a 500 problem.
func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil || v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared as net/http does
				if v != nil {
					panic(v)
				}
				return
			}
			s.log.ErrorContext(r.Context(), "handler panicked", "panic", v)
			s.writeProblem(w, r, http.StatusInternalServerError, ProblemInternal, "the server failed; the request id identifies the failure in its logs")
		}()
		next.ServeHTTP(w, r)
	})
}
