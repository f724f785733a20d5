package obs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/obs/obstest"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
)

func newEvent(t *testing.T, id, typ, job string, payload any) event.Event {
	t.Helper()
	e, err := events.New(nil, id, typ, "/test", 0, job, payload)
	require.NoError(t, err)
	return e
}

func tracing(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(obs.JobIDs()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// TestStage_counts_jobs_and_pages_from_terminal_replies: the middleware
// counts what the terminal events a stage replies say, once per job even
// when a redelivery replies the same terminal event again.
func TestStage_counts_jobs_and_pages_from_terminal_replies(t *testing.T) {
	completedEv := func(t *testing.T, job string, c events.JobCompleted) event.Event {
		c.JobID = job
		return newEvent(t, events.CompletedID(job), events.TypeJobCompleted, job, c)
	}
	for _, tc := range []struct {
		name      string
		reply     func(t *testing.T) event.Event
		err       error
		redeliver bool
		jobs      map[[2]string]float64 // (outcome, error_type) → count
		pages     map[[2]string]float64 // (route, outcome) → count
		outcome   string                // stage duration outcome label
	}{
		{
			name: "completed_job_counts_its_pages_by_route",
			reply: func(t *testing.T) event.Event {
				return completedEv(t, "j1", events.JobCompleted{PagesByRoute: map[string]int{"gpu": 3, "text": 2},
					FailedPages: []events.FailedPage{{Page: 6, Route: events.RouteOCR}, {Page: 7, Route: events.RouteText}}})
			},
			jobs:    map[[2]string]float64{{obs.JobCompleted, ""}: 1},
			pages:   map[[2]string]float64{{"gpu", "ok"}: 3, {"text", "ok"}: 2, {"gpu", "failed"}: 1, {"text", "failed"}: 1},
			outcome: obs.OutcomeOK,
		},
		{
			name: "redelivered_deciding_event_is_counted_once",
			reply: func(t *testing.T) event.Event {
				return completedEv(t, "j2", events.JobCompleted{PagesByRoute: map[string]int{"gpu": 4}})
			},
			redeliver: true,
			jobs:      map[[2]string]float64{{obs.JobCompleted, ""}: 1},
			pages:     map[[2]string]float64{{"gpu", "ok"}: 4},
			outcome:   obs.OutcomeOK,
		},
		{
			name: "reused_result_counts_no_pages",
			reply: func(t *testing.T) event.Event {
				return completedEv(t, "j3", events.JobCompleted{PagesByRoute: map[string]int{"gpu": 9}, Reused: true})
			},
			jobs:    map[[2]string]float64{{obs.JobReused, ""}: 1, {obs.JobCompleted, ""}: 0},
			pages:   map[[2]string]float64{{"gpu", "ok"}: 0},
			outcome: obs.OutcomeOK,
		},
		{
			name: "failed_job_counts_its_error_type",
			reply: func(t *testing.T) event.Event {
				e, err := events.Failed(nil, "/test", "j4", "", string(failure.TypeValidation), "not a document", 0)
				require.NoError(t, err)
				return e
			},
			jobs:    map[[2]string]float64{{obs.JobFailed, "validation"}: 1},
			outcome: obs.OutcomeOK,
		},
		{
			name:    "handler_error_counts_no_job",
			err:     failure.Transient("store down"),
			jobs:    map[[2]string]float64{{obs.JobFailed, "transient"}: 0, {obs.JobCompleted, ""}: 0},
			outcome: string(failure.TypeTransient),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := obs.NewMetrics()
			store := blob.NewMemory()
			in := newEvent(t, "in-1", events.TypePageRecognized, "j", map[string]any{})
			h := obs.Stage(m, nil, stage.Finalize)(func(ctx context.Context, e event.Event) (*event.Event, error) {
				if tc.err != nil {
					return nil, tc.err
				}
				ev := tc.reply(t)
				job, _ := ev.Extensions()[events.ExtJob].(string)
				// Ended first, as the stages do: a redelivery of the
				// deciding event replies the recorded outcome again.
				if again, ended, err := scratch.Ended(ctx, store, job, e.ID()); err != nil || ended {
					return again, err
				}
				return scratch.End(ctx, store, job, e, ev)
			})
			deliveries := 1
			if tc.redeliver {
				deliveries = 2
			}
			for range deliveries {
				reply, err := h(t.Context(), in)
				if tc.err != nil {
					require.Error(t, err)
					continue
				}
				require.NoError(t, err)
				require.NotNil(t, reply, "every delivery replies the terminal event")
			}
			got := obstest.ScrapeHandler(t, m.Handler())
			for k, want := range tc.jobs {
				assert.InDelta(t, want, got.Value(obs.MetricJobs, map[string]string{"outcome": k[0], "error_type": k[1]}), 0, "jobs %v", k)
			}
			for k, want := range tc.pages {
				assert.InDelta(t, want, got.Value(obs.MetricPages, map[string]string{"route": k[0], "outcome": k[1]}), 0, "pages %v", k)
			}
			assert.InDelta(t, float64(deliveries), got.Value(obs.MetricStageDuration, map[string]string{"stage": stage.Finalize, "outcome": tc.outcome}), 0,
				"stage duration observations")
			assert.InDelta(t, float64(deliveries), got.Value(obs.MetricEventAge, map[string]string{"stage": stage.Finalize}), 0, "event age observations")
		})
	}
}

// TestStage_continues_the_trace_of_the_event: the handling's span is a
// child of the event's traceparent, and the reply carries the span on.
func TestStage_continues_the_trace_of_the_event(t *testing.T) {
	for _, tc := range []struct {
		name string
		// parent is the incoming event's traceparent ("" = none).
		parent string
		// wantTrace is the trace id the handling's span must have.
		wantTrace string
	}{
		{"traceparent_is_continued", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"job_without_traceparent_gets_its_derived_trace", "", obs.TraceIDOf("job-7").String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, exp := tracing(t)
			in := newEvent(t, "job-7-p1-rendered", events.TypePageRendered, "job-7", map[string]any{})
			if tc.parent != "" {
				in.SetExtension(events.ExtTraceparent, tc.parent)
			}
			var inner trace.SpanContext
			h := obs.Stage(nil, tp, stage.Recognize)(func(ctx context.Context, e event.Event) (*event.Event, error) {
				inner = trace.SpanContextFromContext(ctx)
				r := newEvent(t, "job-7-p1-recognized", events.TypePageRecognized, "job-7", map[string]any{})
				return &r, nil
			})
			reply, err := h(t.Context(), in)
			require.NoError(t, err)

			spans := exp.GetSpans()
			require.Len(t, spans, 1)
			s := spans[0]
			assert.Equal(t, stage.Recognize, s.Name)
			assert.Equal(t, tc.wantTrace, s.SpanContext.TraceID().String(), "trace id")
			assert.Equal(t, s.SpanContext, inner, "the handler runs in the stage span")
			if tc.parent != "" {
				assert.Equal(t, "00f067aa0ba902b7", s.Parent.SpanID().String(), "parent span is the event's")
			}
			tpOut, _ := reply.Extensions()[events.ExtTraceparent].(string)
			assert.Equal(t, "00-"+s.SpanContext.TraceID().String()+"-"+s.SpanContext.SpanID().String()+"-01", tpOut,
				"the reply's traceparent names the stage span")
		})
	}
}

// senderFunc adapts a function to obs.Sender.
type senderFunc func(ctx context.Context, e event.Event) error

func (f senderFunc) Send(ctx context.Context, e event.Event) error { return f(ctx, e) }

func TestTracingSender_injects_the_current_span(t *testing.T) {
	tp, _ := tracing(t)
	var sent []event.Event
	s := obs.TracingSender(senderFunc(func(_ context.Context, e event.Event) error {
		sent = append(sent, e)
		return nil
	}))
	e := newEvent(t, "job-8-p1-rendered", events.TypePageRendered, "job-8", map[string]any{})
	e.SetExtension(events.ExtTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

	require.NoError(t, s.Send(t.Context(), e), "no span: sent as it is")
	ctx, span := tp.Tracer("test").Start(t.Context(), "render")
	require.NoError(t, s.Send(ctx, e), "within a span")
	span.End()

	require.Len(t, sent, 2)
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", sent[0].Extensions()[events.ExtTraceparent], "without a span")
	sc := span.SpanContext()
	assert.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", sent[1].Extensions()[events.ExtTraceparent], "within a span")
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", e.Extensions()[events.ExtTraceparent],
		"the caller's event is left alone")
}

func TestLogHandler_adds_the_trace_of_the_context(t *testing.T) {
	tp, _ := tracing(t)
	var buf bytes.Buffer
	log := obs.Logger(slog.New(slog.NewJSONHandler(&buf, nil)))
	assert.Same(t, log, obs.Logger(log), "wrapping twice is a no-op")
	ctx, span := tp.Tracer("test").Start(t.Context(), "convert")
	log.InfoContext(ctx, "within a span", "job", "j")
	span.End()
	log.With("stage", "convert").InfoContext(ctx, "with attributes")
	log.InfoContext(t.Context(), "without a span")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	sc := span.SpanContext()
	for i, want := range []map[string]string{
		{obs.LogTraceID: sc.TraceID().String(), obs.LogSpanID: sc.SpanID().String()},
		{obs.LogTraceID: sc.TraceID().String(), obs.LogSpanID: sc.SpanID().String(), "stage": "convert"},
		{obs.LogTraceID: "", obs.LogSpanID: ""},
	} {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &rec))
		for k, v := range want {
			if v == "" {
				assert.NotContains(t, rec, k, "line %d", i)
				continue
			}
			assert.Equal(t, v, rec[k], "line %d field %s", i, k)
		}
	}
}

// TestNames_lists_every_family_the_registry_exports: the names dashboards
// and alerts are checked against are what a scrape shows.
func TestNames_lists_every_family_the_registry_exports(t *testing.T) {
	m := obs.NewMetrics()
	// Give every vector a series, so every family is exported.
	m.Job(obs.JobCompleted, "")
	m.Pages(obs.RouteGPU, obs.PageOK, 1)
	m.StageHandled(stage.Convert, obs.OutcomeOK, time.Millisecond)
	m.EventAge(stage.Convert, time.Second)
	m.EngineCall(engine.NameFake)(obs.OutcomeOK)
	m.EngineTokens(engine.NameFake, "prompt", 1)
	m.EngineStep(engine.NameFake, engine.StepLoop)
	m.Delivery(stage.Convert, failure.Ack)
	m.DeadLetter(stage.Convert, failure.Transient("x"))
	m.ContentBytes(obs.DirectionDownload, 1)
	m.Queue(func(context.Context) ([]obs.QueueStat, error) {
		return []obs.QueueStat{{Consumer: "ocrflow-convert", Pending: 1}}, nil
	})
	got := obstest.ScrapeHandler(t, m.Handler())
	var exported []string
	for name, f := range got {
		if !strings.HasPrefix(name, "ocrflow_") {
			continue
		}
		if f.GetType().String() == "HISTOGRAM" {
			exported = append(exported, name+"_bucket", name+"_sum", name+"_count")
			continue
		}
		exported = append(exported, name)
	}
	slices.Sort(exported)
	assert.Equal(t, obs.Names(), exported)
	assert.NotEmpty(t, got["go_goroutines"].GetMetric(), "the Go collector is registered")
}
