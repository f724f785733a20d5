package obs

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// Scope is the instrumentation scope of the spans package obs starts.
const Scope = "github.com/ocrflow/ocrflow/shared/obs"

// Span attribute keys ocrflow sets.
const (
	AttrStage     = attribute.Key("ocrflow.stage")
	AttrJob       = attribute.Key("ocrflow.job")
	AttrPage      = attribute.Key("ocrflow.page")
	AttrAttempt   = attribute.Key("ocrflow.attempt")
	AttrEventID   = attribute.Key("cloudevents.event_id")
	AttrEventType = attribute.Key("cloudevents.event_type")
	AttrReplyType = attribute.Key("ocrflow.reply_type")
)

// Tracer returns tp's tracer for scope, or a no-op tracer when tp is nil.
func Tracer(tp trace.TracerProvider, scope string) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(scope)
	}
	return tp.Tracer(scope)
}

// Stage returns the middleware that observes every handling of the named
// stage: a span (named after the stage, a child of the event's
// traceparent) around the handler, whose reply carries the span on as its
// traceparent; the handling's duration and the event's age; and the jobs
// and pages of the terminal events the stage replies (ocr.job.completed,
// ocr.job.failed). A terminal event a redelivery replies again
// (scratch.WithRepeats) is not counted twice. m and tp may be nil.
func Stage(m *Metrics, tp trace.TracerProvider, name string) stage.Middleware {
	tracer := Tracer(tp, Scope)
	return func(next stage.Handler) stage.Handler {
		return func(ctx context.Context, e event.Event) (*event.Event, error) {
			start := time.Now()
			if t := e.Time(); !t.IsZero() {
				m.EventAge(name, start.Sub(t))
			}
			job := JobOf(e)
			ctx = Extract(ctx, e)
			if !trace.SpanContextFromContext(ctx).IsValid() && job != "" {
				ctx = withJobSeed(ctx, job)
			}
			attrs := []attribute.KeyValue{AttrStage.String(name), AttrEventID.String(e.ID()), AttrEventType.String(e.Type()),
				AttrAttempt.Int(stage.Attempt(ctx))}
			if job != "" {
				attrs = append(attrs, AttrJob.String(job))
			}
			if p, ok := e.Extensions()[events.ExtPage].(string); ok {
				attrs = append(attrs, AttrPage.String(p))
			}
			ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
			defer span.End()
			ctx, repeated := scratch.WithRepeats(ctx)

			reply, err := next(ctx, e)

			m.StageHandled(name, Outcome(err), time.Since(start))
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, failure.Message(err, 300))
			}
			if reply != nil {
				span.SetAttributes(AttrReplyType.String(reply.Type()))
				Inject(ctx, reply)
				if err == nil && !repeated() {
					m.terminal(*reply)
				}
			}
			return reply, err
		}
	}
}

// JobOf returns the job an event belongs to: its ocrjob extension, or the
// id of a simpleprocess.job event; "" when it names none.
func JobOf(e event.Event) string {
	if j, ok := e.Extensions()[events.ExtJob].(string); ok && j != "" {
		return j
	}
	if e.Type() == events.TypeJob {
		return e.ID()
	}
	return ""
}

// Page outcomes and routes (the labels of ocrflow_pages_total).
const (
	PageOK     = "ok"
	PageFailed = "failed"
	RouteGPU   = "gpu"
	RouteText  = "text"
)

// terminal counts the job and pages of a terminal event e; other events
// count nothing.
func (m *Metrics) terminal(e event.Event) {
	if m == nil {
		return
	}
	switch e.Type() {
	case events.TypeJobCompleted:
		var c events.JobCompleted
		if events.Decode(e, &c) != nil {
			return
		}
		if c.Reused {
			m.Job(JobReused, "")
			return // nothing was processed
		}
		m.Job(JobCompleted, "")
		for route, n := range c.PagesByRoute {
			m.Pages(route, PageOK, n)
		}
		for _, f := range c.FailedPages {
			route := RouteGPU
			if f.Route == events.RouteText {
				route = RouteText
			}
			m.Pages(route, PageFailed, 1)
		}
	case events.TypeJobFailed:
		var f events.JobFailed
		if events.Decode(e, &f) != nil {
			return
		}
		m.Job(JobFailed, f.ErrorType)
	}
}

// EndSpan ends span, marking it failed with err when err is not nil.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, failure.Message(err, 300))
	}
	span.End()
}

// NoopTracer is the tracer of a stage given none.
func NoopTracer() trace.Tracer { return noop.NewTracerProvider().Tracer("") }
