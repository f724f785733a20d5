// Package ocrflow is the Knative function. func-go (knative.dev/func-go,
// what `func run` and `func deploy` build around this package) calls New,
// then Start with the environment, and delivers every CloudEvent the
// Triggers route to this Service to Handle. OCR_STAGES selects the stages an
// instance serves, so one image runs as the convert, recognize, finalize
// and deadletter Services.
//
// The function is a thin adapter: the pipeline is assembled by the
// composition root (internal/app) on the Knative transport
// (shared/knative), which routes events, answers with HTTP statuses and
// publishes fan-out to the broker ingress (K_SINK).
//
// Time limit: func-go's HTTP server has a hard-coded 30 s write timeout and
// every Trigger's delivery timeout is PT30S, so each Handle call must finish
// in under 30 s. A slower answer is lost (the broker sees a timeout and
// redelivers; every stage is idempotent, so this costs time, not
// correctness). Convert keeps within it by converting long documents in
// slices (CONVERT_SLICE). The standalone runtime, `ocrflow serve`, has no
// HTTP write timeout: its only limit is each Trigger's delivery timeout.
package ocrflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/knative"
	"github.com/ocrflow/ocrflow/shared/obs"
)

// Function is the instanced func-go function. func-go calls its methods
// concurrently: Start runs in its own goroutine while requests are already
// being served, so Handle answers 503 until Start has finished.
type Function struct {
	mu      sync.Mutex // serializes Start and Stop
	app     *app.App
	metrics *obs.MetricsServer // nil when METRICS_ADDR is empty
	running atomic.Pointer[knative.Transport]
}

// New returns the function. It does no work: func-go calls it before it
// listens, and the cold-start budget (ready in < 150 ms) leaves no room for
// I/O here. Start does the wiring.
func New() *Function { return &Function{} }

// Start reads the configuration from cfg (func-go passes the environment,
// layered over an optional ./cfg file) and assembles the stages OCR_STAGES
// selects on the Knative transport: the scratch store (BLOB_URL), the
// content store, the engine (only when recognize is served) and, when
// convert is served, the sink convert fans pages out to (K_SINK, required
// then); and serves Prometheus metrics at /metrics on METRICS_ADDR, a port
// of its own. A Start error stops the process.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running.Load() != nil {
		return errors.New("ocrflow: already started")
	}
	t, a, ms, err := start(ctx, cfg, os.Stderr)
	if err != nil {
		return fmt.Errorf("ocrflow start: %w", err)
	}
	f.app, f.metrics = a, ms
	f.running.Store(t)
	return nil
}

// start assembles the pipeline from the environment in env and serves
// its metrics on METRICS_ADDR (ms is nil when that is empty).
func start(ctx context.Context, env map[string]string, logTo io.Writer) (t *knative.Transport, a *app.App, ms *obs.MetricsServer, err error) {
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		return nil, nil, nil, err
	}
	log := newLogger(logTo, cfg.LogLevel)
	tcfg, err := knative.ConfigFrom(cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	t, err = knative.New(tcfg)
	if err != nil {
		return nil, nil, nil, err
	}
	a, err = app.Open(ctx, cfg, app.Options{Transport: t, Log: log})
	if err != nil {
		return nil, nil, nil, errors.Join(err, t.Close())
	}
	attrs := []any{"stages", t.Stages()}
	if s := t.Sink(); s != "" {
		attrs = append(attrs, "sink", s)
	}
	if cfg.MetricsAddr != "" {
		if ms, err = obs.ServeMetrics(cfg.MetricsAddr, a.Metrics()); err != nil {
			return nil, nil, nil, errors.Join(err, t.Close(), a.Close(ctx))
		}
		attrs = append(attrs, "metrics", "http://"+ms.Addr()+obs.MetricsPath)
	}
	log.Info("function ready", attrs...)
	return t, a, ms, nil
}

// Stop is called by func-go after its HTTP server has drained. The
// function reports not ready from then on and releases its connections.
func (f *Function) Stop(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.running.Swap(nil)
	if t == nil {
		return nil
	}
	err := errors.Join(t.Close(), f.app.Close(ctx))
	if f.metrics != nil {
		err = errors.Join(err, f.metrics.Close(ctx))
	}
	if err != nil {
		return fmt.Errorf("ocrflow stop: %w", err)
	}
	f.app, f.metrics = nil, nil
	return nil
}

// Ready reports whether Start has finished successfully (and Stop has not
// been called). func-go answers /health/readiness with it, so Knative sends
// no traffic before the stages exist.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	return f.running.Load() != nil, nil
}

// Alive reports that the process can serve. Nothing in the function can
// wedge without also failing its requests, so it is always alive.
func (f *Function) Alive(ctx context.Context) (bool, error) {
	return true, nil
}

// Handle delivers e to the stage that consumes it (knative.Transport) and
// returns the stage's reply, or an error carrying the HTTP status that
// tells the broker what to do (failure.Status). Each call must finish in
// under 30 s (see the package comment).
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	t := f.running.Load()
	if t == nil {
		return nil, knative.Result(failure.Transient("ocrflow is not ready: Start has not finished or Stop was called"))
	}
	return t.Handle(ctx, e)
}

// newLogger returns a JSON logger at level (debug, info, warn or error),
// matching func-go's own JSON logs on stderr.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	// Log lines written with a job's context carry its trace id.
	return slog.New(obs.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))).With("component", "ocrflow")
}
