package app

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/obs"
)

// Instrumented is the optional capability of a transport that records
// deliveries and dead letters (and, for the standalone runtime, its
// consumers' backlog): Open hands it the process's metrics before Serve.
type Instrumented interface {
	Instrument(m *obs.Metrics)
}

// Token kinds (the kind label of ocrflow_engine_tokens_total).
const (
	tokensPrompt     = "prompt"
	tokensCompletion = "completion"
)

// observedEngine records every engine call: its duration and outcome
// (fallback when the fallback engine answered), the calls in flight, the
// tokens and ladder steps the engine reports (also as attributes of the
// caller's span).
type observedEngine struct {
	next engine.Engine
	m    *obs.Metrics
}

// observeEngine wraps e with the engine metrics.
func observeEngine(e engine.Engine, m *obs.Metrics) engine.Engine {
	if e == nil {
		return nil
	}
	return observedEngine{next: e, m: m}
}

// Name returns the wrapped engine's name.
func (o observedEngine) Name() string { return o.next.Name() }

// Recognize calls the wrapped engine and records the call.
func (o observedEngine) Recognize(ctx context.Context, p engine.Page) (engine.Result, error) {
	name := o.next.Name()
	done := o.m.EngineCall(name)
	res, err := o.next.Recognize(ctx, p)
	outcome := obs.Outcome(err)
	if err == nil && res.Engine != "" && res.Engine != name {
		// The fallback answered: the configured engine did not.
		outcome = obs.OutcomeFallback
	}
	done(outcome)
	o.m.EngineTokens(name, tokensPrompt, res.Usage.PromptTokens)
	o.m.EngineTokens(name, tokensCompletion, res.Usage.CompletionTokens)
	for _, s := range res.Steps {
		o.m.EngineStep(name, s)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.Int("ocrflow.tokens.prompt", res.Usage.PromptTokens),
			attribute.Int("ocrflow.tokens.completion", res.Usage.CompletionTokens),
			attribute.StringSlice("ocrflow.engine_steps", res.Steps))
	}
	return res, err
}

// observedContent counts the bytes the stages move through the content
// store: sources fetched (their size) and results stored (the markdown's
// length). It keeps the store's optional capabilities: reuse answers
// nothing and failures go unrecorded when the store has neither, which is
// what the stages do for a store without them.
type observedContent struct {
	next ContentStore
	m    *obs.Metrics
}

// Interface guards: the stages find reuse and failure traces through the
// decorator.
var (
	_ content.Reuser          = observedContent{}
	_ content.FailureRecorder = observedContent{}
)

// observedOutputs is observedContent over a store that stores every
// output (content.OutputStorer). A store without that capability is
// wrapped without it, so that finalize still sees what the store can do
// and hands it the markdown read into Result.Markdown.
type observedOutputs struct{ observedContent }

var _ content.OutputStorer = observedOutputs{}

// observeContent wraps s with the content metrics, keeping its
// capabilities.
func observeContent(s ContentStore, m *obs.Metrics) ContentStore {
	o := observedContent{next: s, m: m}
	if _, ok := s.(content.OutputStorer); ok {
		return observedOutputs{o}
	}
	return o
}

// Fetch fetches the source and counts its bytes as downloaded.
func (o observedContent) Fetch(ctx context.Context, j job.Job, dst string, maxBytes int64) (content.Source, error) {
	src, err := o.next.Fetch(ctx, j, dst, maxBytes)
	if err == nil {
		o.m.ContentBytes(obs.DirectionDownload, src.Size)
	}
	return src, err
}

// Store stores the result and counts its markdown as uploaded.
func (o observedContent) Store(ctx context.Context, r content.Result) (string, error) {
	ref, err := o.next.Store(ctx, r)
	if err == nil {
		o.m.ContentBytes(obs.DirectionUpload, int64(len(r.Markdown)))
	}
	return ref, err
}

// StoreOutputs stores every output of r, counting their bytes.
func (o observedOutputs) StoreOutputs(ctx context.Context, r content.Result) (content.Stored, error) {
	st, err := o.next.(content.OutputStorer).StoreOutputs(ctx, r)
	if err == nil {
		for _, f := range r.Files() {
			o.m.ContentBytes(obs.DirectionUpload, f.Size)
		}
	}
	return st, err
}

// Existing asks the wrapped store for a reusable result, when it can say.
func (o observedContent) Existing(ctx context.Context, j job.Job, key string) (content.Derived, bool, error) {
	if r, ok := o.next.(content.Reuser); ok {
		return r.Existing(ctx, j, key)
	}
	return content.Derived{}, false, nil
}

// RecordFailure leaves the wrapped store's failure trace, when it keeps one.
func (o observedContent) RecordFailure(ctx context.Context, f content.Failure) error {
	if r, ok := o.next.(content.FailureRecorder); ok {
		return r.RecordFailure(ctx, f)
	}
	return nil
}
