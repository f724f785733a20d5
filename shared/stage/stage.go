// Package stage is what every stage of the pipeline shares. A stage is one
// step of the pipeline — convert, recognize, finalize, deadletter and the
// optional autoocr — and this package holds its name, its handler
// signature, the middleware that wraps every handler, the built Stage a
// transport serves, and the delivery metadata a transport passes in.
package stage

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// The stages, by name (OCR_STAGES, the Knative Service ocrflow-<name>).
const (
	Convert    = "convert"
	Recognize  = "recognize"
	Finalize   = "finalize"
	DeadLetter = "deadletter"
	// AutoOCR turns content-uploaded events into jobs (optional: not in
	// the default OCR_STAGES).
	AutoOCR = "autoocr"
)

// Pipeline lists the stages every deployment runs, in pipeline order.
func Pipeline() []string { return []string{Convert, Recognize, Finalize, DeadLetter} }

// Known reports whether name is a stage.
func Known(name string) bool {
	switch name {
	case Convert, Recognize, Finalize, DeadLetter, AutoOCR:
		return true
	}
	return false
}

// Stage is a built stage, ready for a transport to serve: its name, its
// handler (with the standard middleware), and how many of its events one
// process handles at once.
type Stage struct {
	Name    string
	Handler Handler
	// Workers is how many events one process handles at once (at least 1).
	Workers int
	// Demand, when set, is how many events the handler can use at once
	// right now — the recognize stage's adaptive in-flight limit plus a
	// few waiting for a slot (engine.Demander). A transport that pulls
	// (standalone, inproc) holds no more than min(Workers, Demand()), so
	// that events do not wait inside the handler past their delivery
	// timeout; Knative, which pushes, bounds requests by
	// containerConcurrency instead.
	Demand func() int
}

// Handler is a stage's handler: it handles one CloudEvent and may return a reply.
// A returned error is classified with package failure: transient errors are
// retried by the transport; a stage turns its own validation and permanent
// failures into reply events (e.g. ocr.job.failed) instead of errors.
type Handler func(ctx context.Context, e event.Event) (*event.Event, error)

// Middleware wraps a Handler with cross-cutting behaviour.
type Middleware func(Handler) Handler

// Chain wraps h so that the first middleware is the outermost.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Recover turns a panic in the handler into a permanent error, so a
// malformed input fails its job instead of the process. (It cannot catch a
// crash inside C code; see render isolation.)
func Recover(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e event.Event) (reply *event.Event, err error) {
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(ctx, "handler panic", "type", e.Type(), "id", e.ID(), "panic", r, "stack", string(debug.Stack()))
					reply, err = nil, failure.Permanent("internal error handling %s: %v", e.Type(), r)
				}
			}()
			return next(ctx, e)
		}
	}
}

// Log logs every call with its outcome and duration.
func Log(log *slog.Logger, name string) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, e event.Event) (*event.Event, error) {
			start := time.Now()
			reply, err := next(ctx, e)
			attrs := []any{"stage", name, "type", e.Type(), "id", e.ID(), "ms", time.Since(start).Milliseconds()}
			if reply != nil {
				attrs = append(attrs, "reply", reply.Type())
			}
			if err != nil {
				log.WarnContext(ctx, "handler failed", append(attrs, "error_type", failure.Classify(err), "error", err)...)
			} else {
				log.DebugContext(ctx, "handled", attrs...)
			}
			return reply, err
		}
	}
}

type attemptKey struct{}

// WithAttempt records the 1-based delivery attempt of the current event.
func WithAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// Attempt returns the delivery attempt recorded by the transport, or 1.
func Attempt(ctx context.Context) int {
	if n, ok := ctx.Value(attemptKey{}).(int); ok && n > 0 {
		return n
	}
	return 1
}

type maxAttemptsKey struct{}

// WithMaxAttempts records how many deliveries the transport makes of the
// current event in all (its Trigger's retry + 1).
func WithMaxAttempts(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, maxAttemptsKey{}, n)
}

// MaxAttempts returns the number of deliveries recorded by the transport,
// or 0 when it is unknown (a transport that does not say, e.g. Knative,
// which sends no delivery count).
func MaxAttempts(ctx context.Context) int {
	if n, ok := ctx.Value(maxAttemptsKey{}).(int); ok && n > 0 {
		return n
	}
	return 0
}

// LastAttempt reports whether the current delivery is known to be the last:
// a failure now is dead-lettered, not retried. It is false when the
// transport recorded no maximum.
func LastAttempt(ctx context.Context) bool {
	m := MaxAttempts(ctx)
	return m > 0 && Attempt(ctx) >= m
}
