// Package ocrflow is the Knative function. func-go (knative.dev/func-go,
// what `func run` and `func deploy` build around this package) calls New,
// then Start with the environment, and delivers every CloudEvent the
// Triggers route to this Service to Handle. OCR_STAGES selects the stages an
// instance serves, so one image runs as the convert, recognize, finalize
// and deadletter Services.
//
// Time limit: func-go's HTTP server has a hard-coded 30 s write timeout and
// every Trigger's delivery timeout is PT30S, so each Handle call must finish
// in under 30 s. A slower answer is lost (the broker sees a timeout and
// redelivers; every stage is idempotent, so this costs time, not
// correctness). Work that cannot fit in 30 s belongs on the standalone
// runtime, `ocrflow serve`, which has no such limit.
package ocrflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/pipeline"
	"github.com/ocrflow/ocrflow/shared/sink"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// EnvSink names the variable holding the sink URL (the broker ingress)
// that convert publishes its fan-out to. Knative sets it for sources and
// SinkBindings; the ocrflow manifests set it explicitly.
const EnvSink = "K_SINK"

// maxErrorBody bounds an error response body. The NATS channel dispatcher
// base64-encodes the body into a 1024-byte buffer and panics past it
// (knative-extensions/eventing-natss#434), so bodies must stay under 768
// bytes.
const maxErrorBody = 700

// errNotServed marks an event this instance has no stage for.
var errNotServed = errors.New("not served here")

// Function is the instanced func-go function. func-go calls its methods
// concurrently: Start runs in its own goroutine while requests are already
// being served, so Handle answers 503 until Start has finished.
type Function struct {
	mu     sync.Mutex // serializes Start and Stop
	sender *sink.HTTP
	routes atomic.Pointer[router]
}

// New returns the function. It does no work: func-go calls it before it
// listens, and the cold-start budget (ready in < 150 ms) leaves no room for
// I/O here. Start does the wiring.
func New() *Function { return &Function{} }

// Start reads the configuration from cfg (func-go passes the environment,
// layered over an optional ./cfg file) and builds the stages OCR_STAGES
// selects: the scratch blob store (BLOB_URL), the content store, the engine
// (only when recognize is served) and, when convert is served, the sink
// convert fans pages out to (K_SINK, required then). A Start error stops
// the process.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routes.Load() != nil {
		return errors.New("ocrflow: already started")
	}
	r, sender, err := wire(ctx, cfg, os.Stderr)
	if err != nil {
		return fmt.Errorf("ocrflow start: %w", err)
	}
	f.sender = sender
	f.routes.Store(r)
	attrs := []any{"stages", r.stages}
	if sender != nil {
		attrs = append(attrs, "sink", sender.Target())
	}
	r.log.Info("function ready", attrs...)
	return nil
}

// Stop is called by func-go after its HTTP server has drained. The
// function reports not ready from then on and releases its idle
// connections.
func (f *Function) Stop(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes.Store(nil)
	if f.sender != nil {
		if err := f.sender.Close(); err != nil {
			return fmt.Errorf("ocrflow stop: %w", err)
		}
		f.sender = nil
	}
	return nil
}

// Ready reports whether Start has finished successfully (and Stop has not
// been called). func-go answers /health/readiness with it, so Knative sends
// no traffic before the stages exist.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	return f.routes.Load() != nil, nil
}

// Alive reports that the process can serve. Nothing in the function can
// wedge without also failing its requests, so it is always alive.
func (f *Function) Alive(ctx context.Context) (bool, error) {
	return true, nil
}

// Handle routes e to the stage that consumes its type and returns the
// stage's reply. An event carrying Knative's knativeerrorcode extension is
// a dead letter and goes to the deadletter stage when this instance serves
// it. Errors become HTTP answers in result. Each call must finish in under
// 30 s (see the package comment).
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	r := f.routes.Load()
	if r == nil {
		return nil, result(failure.Transient("ocrflow is not ready: Start has not finished or Stop was called"))
	}
	reply, err := r.handle(ctx, e)
	if err != nil {
		return nil, result(err)
	}
	return reply, nil
}

// result translates a stage's error into the HTTP answer func-go writes;
// it is the only place error classes meet status codes. The Knative NATS
// JetStream channel acts on the status alone (knative-extensions/eventing-natss
// pkg/channel/jetstream/dispatcher): 2xx acks;
// 5xx, 408 and 429 are redelivered with backoff and, once retries run out,
// dead-lettered; any other 4xx is dropped at once (Term), reaching the
// dead-letter sink only on the last attempt. So:
//
//   - nil → nil: 200, with the reply event if there is one.
//   - not served here → 400. Either a Trigger routes a type to the wrong
//     Service or OCR_STAGES is wrong: a deployment error no retry can fix,
//     so the channel may drop it. Retrying would only repeat the answer, and
//     dead-lettering would turn a healthy page into a failed one. The body
//     names the type and the served stages for the dispatcher's logs.
//   - transient (failure.Retryable) → 503, so the channel retries with
//     backoff. Never a 4xx: that would drop the event.
//   - anything else → 500. Stages turn validation and permanent failures
//     they own into reply events (ocr.job.failed, a failed page); an error
//     that still gets here has no reply. 500 is retried (harmless: stages
//     are idempotent) and then dead-lettered, and the deadletter stage turns
//     it into a failed page or job, so no job is left hanging.
//
// Bodies are cut to maxErrorBody bytes.
func result(err error) protocol.Result {
	if err == nil {
		return nil
	}
	msg := failure.Message(err, maxErrorBody)
	switch {
	case errors.Is(err, errNotServed):
		return cehttp.NewResult(http.StatusBadRequest, "%s", msg)
	case failure.Retryable(err):
		return cehttp.NewResult(http.StatusServiceUnavailable, "%s", msg)
	default:
		return cehttp.NewResult(http.StatusInternalServerError, "%s", msg)
	}
}

// consumers maps each event type a stage consumes to that stage, as the
// Triggers in eventing/ route them.
func consumers() map[string]string {
	return map[string]string{
		events.TypeJob:             config.StageConvert,
		events.TypeConvertContinue: config.StageConvert,
		events.TypePageRendered:    config.StageRecognize,
		events.TypePageRecognized:  config.StageFinalize,
	}
}

// router holds the built stages of one started function.
type router struct {
	byType     map[string]stage.Handler
	deadLetter stage.Handler // nil unless the deadletter stage is served
	stages     []string
	log        *slog.Logger
}

// newRouter routes by consumers(), plus autoUploadType to the optional
// autoocr stage when it is served.
func newRouter(stages []pipeline.Stage, autoUploadType string, log *slog.Logger) *router {
	r := &router{byType: map[string]stage.Handler{}, log: log}
	byName := map[string]stage.Handler{}
	for _, s := range stages {
		r.stages = append(r.stages, s.Name)
		byName[s.Name] = s.Handler
	}
	r.deadLetter = byName[config.StageDeadLetter]
	for t, name := range consumers() {
		if h, ok := byName[name]; ok {
			r.byType[t] = h
		}
	}
	if h, ok := byName[config.StageAutoOCR]; ok {
		r.byType[autoUploadType] = h
	}
	return r
}

func (r *router) route(e event.Event) (stage.Handler, error) {
	if r.deadLetter != nil {
		if _, dead := e.Extensions()[events.ExtErrorCode]; dead {
			return r.deadLetter, nil
		}
	}
	if h, ok := r.byType[e.Type()]; ok {
		return h, nil
	}
	want := "no stage"
	if name, ok := consumers()[e.Type()]; ok {
		want = "stage " + name
	}
	return nil, fmt.Errorf("%w: %w: event %s of type %q needs %s; this instance serves %s (OCR_STAGES): check the Trigger filters",
		failure.ErrPermanent, errNotServed, e.ID(), e.Type(), want, strings.Join(r.stages, ","))
}

// handle runs e's stage and checks its reply: func-go installs no
// defaulters, and a reply without id, source or type would go out as an
// empty 200 that the broker cannot route.
func (r *router) handle(ctx context.Context, e event.Event) (*event.Event, error) {
	h, err := r.route(e)
	if err != nil {
		r.log.Warn("event not served", "type", e.Type(), "id", e.ID(), "stages", r.stages)
		return nil, err
	}
	reply, err := h(ctx, e)
	if err != nil {
		return nil, err // the stage's middleware has logged it
	}
	if reply != nil {
		if verr := reply.Validate(); verr != nil {
			r.log.Error("invalid reply", "type", e.Type(), "id", e.ID(), "reply", reply.Type(), "error", verr)
			return nil, fmt.Errorf("%w: reply to %s %s is not a valid CloudEvent: %w", failure.ErrPermanent, e.Type(), e.ID(), verr)
		}
	}
	return reply, nil
}

// wire builds the router from the environment in env. The sink is
// returned so Stop can release it.
func wire(ctx context.Context, env map[string]string, logTo io.Writer) (*router, *sink.HTTP, error) {
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		return nil, nil, err
	}
	log := newLogger(logTo, cfg.LogLevel)

	var sender *sink.HTTP
	if cfg.Serves(config.StageConvert) {
		target := env[EnvSink]
		if target == "" {
			return nil, nil, fmt.Errorf("%s is empty: the convert stage fans pages out through the broker, so set %s to the broker ingress URL, or drop convert from OCR_STAGES",
				EnvSink, EnvSink)
		}
		if sender, err = sink.NewHTTP(target); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", EnvSink, err)
		}
	}
	blobs, err := pipeline.OpenBlobs(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	store, err := pipeline.NewContent(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	var eng engine.Engine
	if cfg.Serves(config.StageRecognize) {
		if eng, err = pipeline.NewEngine(ctx, cfg); err != nil {
			return nil, nil, err
		}
	}
	ports := pipeline.Ports{Blobs: blobs, Content: store, Engine: eng, Log: log}
	if sender != nil { // keep a nil sender a nil interface
		ports.Sender = sender
	}
	stages, err := pipeline.Build(cfg, ports)
	if err != nil {
		return nil, nil, err
	}
	return newRouter(stages, cfg.AutoOCRType, log), sender, nil
}

// newLogger returns a JSON logger at level (debug, info, warn or error),
// matching func-go's own JSON logs on stderr.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("component", "ocrflow")
}
