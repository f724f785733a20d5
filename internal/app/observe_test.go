package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/obs/obstest"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// observed is a pipeline on the standalone runtime with the fake engine,
// the directory content store over testdata and a scratch store the test
// reads, assembled with o's metrics, tracing and log.
type observed struct {
	*served
	blobs *blob.Dir
}

func newObserved(t *testing.T, fake *engine.Fake, o app.Options) *observed {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(testdata)
	require.NoError(t, err)
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		v, ok := map[string]string{"OCR_ENGINE": "fake", "RECOGNIZE_WORKERS": "3", "CONVERT_WORKERS": "2", "MAX_PAGE_ERROR_RATE": "1"}[k]
		return v, ok
	})
	require.NoError(t, err)
	blobs, err := blob.NewDir(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	cd, err := contentdir.New([]string{abs}, filepath.Join(dir, "out"))
	require.NoError(t, err)
	o.Scratch, o.Content, o.Engine = blobs, cd, fake
	return &observed{served: serve(t, cfg, o, ""), blobs: blobs}
}

func (p *observed) run(t *testing.T, id, file string, hints map[string]string) event.Event {
	t.Helper()
	e, err := job.NewEvent(job.Spec{ID: id, Location: file, Hints: hints})
	require.NoError(t, err)
	require.NoError(t, p.rt.Send(t.Context(), e))
	evs := p.journal.until(t, id, 60*time.Second)
	return evs[len(evs)-1]
}

// TestObserve_metrics_count_what_the_pipeline_did: after a run, a scrape of
// the pipeline's /metrics handler shows the pages processed by route and
// outcome (as the page records say), the jobs by outcome, the engine's
// calls and the bytes moved.
func TestObserve_metrics_count_what_the_pipeline_did(t *testing.T) {
	var calls, refused atomic.Int32
	fake := &engine.Fake{Fail: func(p engine.Page) error {
		calls.Add(1)
		if p.JobID == "obs-failing-page" && p.Number == 2 {
			refused.Add(1)
			return failure.Permanent("the model gave up")
		}
		return nil
	}}
	m := obs.NewMetrics()
	p := newObserved(t, fake, app.Options{Metrics: m})
	require.Same(t, m, p.app.Metrics(), "the App records on the metrics it was given")

	ran := []struct {
		id, file string
		hints    map[string]string
		failed   bool
	}{
		{id: "obs-text-layer", file: "report.pdf"},
		{id: "obs-scanned", file: "scanned.pdf", hints: map[string]string{"text_layer": "off"}},
		{id: "obs-failing-page", file: "report.pdf", hints: map[string]string{"text_layer": "off"}},
		{id: "obs-missing", file: "missing.pdf", failed: true},
	}
	pages := map[[2]string]float64{} // (route, outcome) → pages, from the page records
	var downloaded, uploaded int64
	for _, r := range ran {
		end := p.run(t, r.id, r.file, r.hints)
		if r.failed {
			require.Equal(t, events.TypeJobFailed, end.Type(), "%s ends", r.id)
			continue
		}
		completed(t, end)
		recs, err := scratch.Records(t.Context(), p.blobs, r.id)
		require.NoError(t, err)
		for _, rec := range recs {
			route := obs.RouteGPU
			if rec.Route == events.RouteText {
				route = obs.RouteText
			}
			pages[[2]string{route, string(rec.Status)}]++
		}
		st, err := os.Stat(filepath.Join(testdata, r.file))
		require.NoError(t, err)
		downloaded += st.Size()
		md, err := scratch.GetBytes(t.Context(), p.blobs, scratch.ResultKey(r.id))
		require.NoError(t, err)
		uploaded += int64(len(md))
	}
	require.Positive(t, pages[[2]string{obs.RouteText, obs.PageOK}], "the run has text-layer pages")
	require.Positive(t, pages[[2]string{obs.RouteGPU, obs.PageOK}], "the run has engine pages")
	require.InDelta(t, 1, pages[[2]string{obs.RouteGPU, obs.PageFailed}], 0, "the run has one failed page")

	got := obstest.ScrapeHandler(t, p.app.Metrics().Handler())
	for _, route := range []string{obs.RouteGPU, obs.RouteText} {
		for _, outcome := range []string{obs.PageOK, obs.PageFailed} {
			assert.InDelta(t, pages[[2]string{route, outcome}], got.Value(obs.MetricPages, map[string]string{"route": route, "outcome": outcome}), 0,
				"pages route=%s outcome=%s", route, outcome)
		}
	}
	assert.InDelta(t, 3, got.Value(obs.MetricJobs, map[string]string{"outcome": obs.JobCompleted}), 0, "jobs completed")
	assert.InDelta(t, 1, got.Value(obs.MetricJobs, map[string]string{"outcome": obs.JobFailed, "error_type": string(failure.TypeValidation)}), 0,
		"jobs failed validation")

	fakeEngine := map[string]string{"engine": engine.NameFake}
	assert.InDelta(t, float64(calls.Load()), got.Value(obs.MetricEngineDuration, fakeEngine), 0, "engine calls")
	assert.InDelta(t, float64(refused.Load()), got.Value(obs.MetricEngineDuration, map[string]string{"engine": engine.NameFake, "outcome": "permanent"}), 0,
		"engine calls refused")
	assert.InDelta(t, 0, got.Value(obs.MetricEngineInflight, fakeEngine), 0, "engine calls in flight after the run")

	assert.InDelta(t, float64(downloaded), got.Value(obs.MetricContentBytes, map[string]string{"direction": obs.DirectionDownload}), 0, "bytes downloaded")
	assert.InDelta(t, float64(uploaded), got.Value(obs.MetricContentBytes, map[string]string{"direction": obs.DirectionUpload}), 0, "bytes uploaded")
	for _, s := range []string{stage.Convert, stage.Recognize, stage.Finalize} {
		assert.Positive(t, got.Value(obs.MetricStageDuration, map[string]string{"stage": s, "outcome": obs.OutcomeOK}), "%s handlings timed", s)
	}
	assert.NotEmpty(t, got.Labels(obs.MetricPending), "the runtime exports its consumers' backlog")
}

// lockedBuffer is a bytes.Buffer safe for the pipeline's concurrent logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// endedSpans is a span processor that reports the name of every span
// that ends.
type endedSpans struct{ names chan string }

func (e *endedSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (e *endedSpans) OnEnd(s sdktrace.ReadOnlySpan)                   { e.names <- s.Name() }
func (e *endedSpans) Shutdown(context.Context) error                  { return nil }
func (e *endedSpans) ForceFlush(context.Context) error                { return nil }

// wait returns once a span named name has ended.
func (e *endedSpans) wait(t *testing.T, name string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case n := <-e.names:
			if n == name {
				return
			}
		case <-timeout:
			require.FailNow(t, "span did not end", "no %s span ended within 30s", name)
		}
	}
}

// TestObserve_one_trace_per_job_across_the_stages: an in-memory span
// exporter sees one trace id across convert, recognize and finalize for
// one job, with child spans for fetch, render, each engine call and the
// store, and every log line about the job carries that trace id.
func TestObserve_one_trace_per_job_across_the_stages(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	ended := &endedSpans{names: make(chan string, 1024)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSpanProcessor(ended), sdktrace.WithIDGenerator(obs.JobIDs()))
	t.Cleanup(func() { assert.NoError(t, tp.Shutdown(context.Background())) })
	var logs lockedBuffer
	p := newObserved(t, &engine.Fake{}, app.Options{
		Tracing: tp, Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	const id = "trace-job"
	completed(t, p.run(t, id, "scanned.pdf", nil))
	// The job can end before convert's handling does (its fan-out is out
	// before it returns): wait for the convert span to end.
	ended.wait(t, stage.Convert)

	// The job event carried no traceparent: its trace id derives from the
	// job id, and every span of the job is in that trace.
	want := obs.TraceIDOf(id)
	spans := exp.GetSpans()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	count := map[string]int{}
	for _, s := range spans {
		if s.SpanContext.TraceID() != want {
			continue
		}
		byID[s.SpanContext.SpanID()] = s
		count[s.Name]++
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if a.Key == obs.AttrJob && a.Value.AsString() == id {
				assert.Equal(t, want.String(), s.SpanContext.TraceID().String(), "span %s of the job is in another trace", s.Name)
			}
		}
	}
	const pagesN = 2 // scanned.pdf
	for name, n := range map[string]int{
		stage.Convert: 1, stage.Recognize: pagesN, stage.Finalize: pagesN,
		"fetch": 1, "open": 1, "textlayer": pagesN, "render": pagesN, "engine": pagesN, "store": 1,
	} {
		assert.Equal(t, n, count[name], "spans named %s in the job's trace (all: %v)", name, count)
	}
	for _, s := range byID {
		if s.Name == stage.Convert {
			assert.False(t, s.Parent.IsValid(), "convert starts the trace")
			continue
		}
		parent, ok := byID[s.Parent.SpanID()]
		if assert.True(t, ok, "span %s has no parent in the trace", s.Name) && s.Name != stage.Recognize && s.Name != stage.Finalize {
			assert.Contains(t, []string{stage.Convert, stage.Recognize, stage.Finalize}, parent.Name, "span %s is a child of its stage", s.Name)
		}
	}
	for _, s := range byID {
		switch s.Name {
		case stage.Recognize:
			assert.Equal(t, stage.Convert, byID[s.Parent.SpanID()].Name, "recognize continues convert's span")
		case stage.Finalize:
			assert.Equal(t, stage.Recognize, byID[s.Parent.SpanID()].Name, "finalize continues recognize's span")
		}
	}

	about := 0
	for _, line := range logs.lines() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "log line %q", line)
		job, _ := rec["job"].(string)
		eventID, _ := rec["id"].(string)
		if job != id && !strings.HasPrefix(eventID, id) {
			continue
		}
		about++
		assert.Equal(t, want.String(), rec[obs.LogTraceID], "log line about the job without its trace id: %s", line)
	}
	assert.GreaterOrEqual(t, about, 1+2*pagesN, "log lines about the job (each handling logs one)")
}
