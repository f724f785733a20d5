// Package app is ocrflow's composition root: configuration → ports →
// stages → a transport, assembled here and nowhere else. Every entry
// point calls Open — the Knative function (the root package), every
// `ocrflow` command and the end-to-end tests — so they all run the same
// stages with the same middleware on the same ports.
//
//	cfg, _ := config.Load()
//	rt, _ := standalone.New(ctx, rtcfg)      // or knative.New(...)
//	a, err := app.Open(ctx, cfg, app.Options{Transport: rt, Log: log})
//	defer a.Close(ctx)
//
// The transports themselves (shared/standalone, shared/knative) are built
// by their entry points, so the function binary never links the embedded
// NATS server it does not use.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/functions/convert"
	"github.com/ocrflow/ocrflow/functions/finalize"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/tmpspace"
)

// Transport carries events between the stages: it publishes what a stage
// sends (the stages' Sender) and delivers events to the stages it serves.
// The standalone JetStream runtime and the Knative transport implement it.
type Transport interface {
	Send(ctx context.Context, e event.Event) error
	// Serve starts delivering events to stages; it returns once they are
	// set up, and delivery goes on until the transport is closed.
	Serve(ctx context.Context, stages ...stage.Stage) error
}

// ContentStore is where sources come from and results go to: the
// directory store (contentdir) or simple-content (simplecontent).
type ContentStore interface {
	convert.Fetcher
	finalize.Storer
}

// Options are what Open needs besides the configuration.
type Options struct {
	// Transport serves the stages and is their Sender (required).
	Transport Transport
	// Log receives the stages' logs; nil discards them.
	Log *slog.Logger

	// Scratch, Content and Engine replace the ports the configuration
	// would open (tests inject instrumented stores and fake engines;
	// `ocrflow run` injects its embedded simple-content). A port given
	// here is the caller's to close.
	Scratch scratch.Store
	Content ContentStore
	Engine  engine.Engine

	// Metrics receives the pipeline's metrics; nil makes a registry of
	// the App's own (App.Metrics). Give one to share a registry, or to
	// read it in tests.
	Metrics *obs.Metrics
	// Tracing replaces the tracer provider the configuration would build
	// (OTEL_EXPORTER_OTLP_ENDPOINT; tests give an in-memory one). A
	// provider given here is the caller's to shut down.
	Tracing trace.TracerProvider
}

// App is an assembled pipeline: its ports and the stages built on them,
// served by a transport.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	scratch scratch.Store
	content ContentStore
	engine  engine.Engine
	recipe  content.Recipe
	metrics *obs.Metrics
	tracing trace.TracerProvider
	// temp is the process's temporary working space (removed on Close).
	temp   *tmpspace.Space
	stages []stage.Stage
	// closers release the ports Open opened, in opening order.
	closers []func() error
}

// closer is the optional capability of a port that holds resources
// (connections, child processes) to release at shutdown.
type closer interface{ Close() error }

// Open assembles the pipeline cfg describes: it opens the scratch store
// (BLOB_URL), the content store (CONTENT_STORE) and, when recognize is
// served, the engine (OCR_ENGINE, checked when it can be); builds the
// stages of OCR_STAGES on them with the standard middleware; and starts
// the transport serving them. The stages are observed (package obs): their
// metrics go to Options.Metrics or a registry of the App's own, their
// spans to the tracer provider of OTEL_EXPORTER_OTLP_ENDPOINT (flushed by
// Close), and their logs carry the trace id. On error everything opened
// is closed again.
func Open(ctx context.Context, cfg config.Config, o Options) (*App, error) {
	if o.Transport == nil {
		return nil, errors.New("app: a transport is required")
	}
	a := &App{cfg: cfg, log: o.Log, metrics: o.Metrics, tracing: o.Tracing}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = obs.Logger(a.log)
	if a.metrics == nil {
		a.metrics = obs.NewMetrics()
	}
	if a.tracing == nil {
		t, err := obs.NewTracing(ctx, cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		a.tracing = t.Provider()
		a.closers = append(a.closers, func() error {
			sctx, cancel := context.WithTimeout(context.Background(), obs.ShutdownTimeout)
			defer cancel()
			return t.Shutdown(sctx)
		})
	}
	if err := a.openPorts(ctx, o); err != nil {
		return nil, errors.Join(err, a.Close(ctx))
	}
	stages, err := a.build(obs.TracingSender(o.Transport))
	if err != nil {
		return nil, errors.Join(err, a.Close(ctx))
	}
	if t, ok := o.Transport.(Instrumented); ok {
		t.Instrument(a.metrics)
	}
	a.stages = stages
	if err := o.Transport.Serve(ctx, stages...); err != nil {
		return nil, errors.Join(err, a.Close(ctx))
	}
	if cfg.Serves(stage.Convert) {
		// After start-up, whose allocations would only be collected
		// more often (a cold start 5 ms slower).
		tuneGC()
	}
	return a, nil
}

// openPorts opens the ports Options does not supply.
func (a *App) openPorts(ctx context.Context, o Options) error {
	var err error
	// Working space first: opening it sweeps what crashed processes left.
	if a.temp, err = tmpspace.Open(os.TempDir(), uint64(a.cfg.MinFreeDisk), a.log); err != nil {
		return err
	}
	a.own(a.temp)
	if a.scratch = o.Scratch; a.scratch == nil {
		if a.scratch, err = OpenScratch(ctx, a.cfg); err != nil {
			return err
		}
		a.own(a.scratch)
	}
	if a.content = o.Content; a.content == nil {
		if a.content, err = OpenContent(ctx, a.cfg, a.log); err != nil {
			return err
		}
		a.own(a.content)
	}
	if a.engine = o.Engine; a.engine == nil && a.cfg.Serves(stage.Recognize) {
		if a.engine, err = OpenEngine(ctx, a.cfg); err != nil {
			return err
		}
		a.own(a.engine)
	}
	engineName := a.cfg.Engine
	if a.engine != nil {
		engineName = a.engine.Name()
	}
	a.recipe = RecipeFor(a.cfg, engineName)
	return nil
}

// own records port p for Close when it holds resources.
func (a *App) own(p any) {
	if c, ok := p.(closer); ok {
		a.closers = append(a.closers, c.Close)
	}
}

// Close releases the ports Open opened (not those Options supplied, nor
// the transport). Stop the transport first: its in-flight handlers use
// the ports.
func (a *App) Close(context.Context) error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close ports: %w", err)
	}
	return nil
}

// Stages returns the stages being served.
func (a *App) Stages() []stage.Stage { return a.stages }

// Scratch returns the scratch store.
func (a *App) Scratch() scratch.Store { return a.scratch }

// Content returns the content store.
func (a *App) Content() ContentStore { return a.content }

// Engine returns the engine (nil when recognize is not served).
func (a *App) Engine() engine.Engine { return a.engine }

// Recipe returns what keys and describes the results of this deployment.
func (a *App) Recipe() content.Recipe { return a.recipe }

// Metrics returns the pipeline's metrics (serve Metrics().Handler() as
// /metrics).
func (a *App) Metrics() *obs.Metrics { return a.metrics }

// Tracing returns the tracer provider the stages' spans go to.
func (a *App) Tracing() trace.TracerProvider { return a.tracing }
