package recognize_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/recognize"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// engineFunc is an engine made of a function.
type engineFunc func(ctx context.Context, p engine.Page) (engine.Result, error)

func (f engineFunc) Name() string { return "vllm" }

func (f engineFunc) Recognize(ctx context.Context, p engine.Page) (engine.Result, error) {
	return f(ctx, p)
}

func TestHandle_records_what_the_engine_reports(t *testing.T) {
	blocks := []engine.Block{{Label: "title", Boxes: [][4]int{{1, 2, 3, 4}}, Text: "# T", Start: 0, End: 3}}
	for _, tc := range []struct {
		name       string
		hint       string
		eng        engineFunc
		wantStatus events.PageStatus
		wantEngine string
		wantReason string // prefix
		wantRaw    string
		wantErr    error
		wantLayout string // the sidecar's source; "" = no sidecar
	}{
		{
			name: "blocks_go_to_the_sidecar",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{Markdown: "# T", Raw: "<|ref|>title…", Blocks: blocks}, nil
			},
			wantStatus: events.PageOK, wantEngine: "vllm", wantRaw: "<|ref|>title…", wantLayout: document.SourceGrounding,
		},
		{
			name: "mode_hint_reaches_the_engine", hint: "tiny",
			eng: func(_ context.Context, p engine.Page) (engine.Result, error) {
				if p.Mode != "tiny" {
					return engine.Result{}, failure.Permanent("mode %q", p.Mode)
				}
				return engine.Result{Markdown: "x"}, nil
			},
			wantStatus: events.PageOK, wantEngine: "vllm", wantLayout: document.SourceMarkdown,
		},
		{
			name: "fallback_engine_is_recorded",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{Markdown: "x", Engine: "tesseract", Meta: map[string]string{"fallback_from": "vllm"}}, nil
			},
			wantStatus: events.PageOK, wantEngine: "tesseract", wantLayout: document.SourceMarkdown,
		},
		{
			name: "give_up_is_a_failed_page_with_its_reason",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{}, engine.GiveUp(engine.ReasonRepetition, "loop loop loop", "page 1: 3 attempts")
			},
			wantStatus: events.PageFailed, wantEngine: "vllm", wantReason: "repetition: page 1: 3 attempts", wantRaw: "loop loop loop",
		},
		{
			name: "other_permanent_failure_keeps_its_class",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{}, failure.Permanent("bad page")
			},
			wantStatus: events.PageFailed, wantEngine: "vllm", wantReason: "permanent: ",
		},
		{
			name: "transient_failure_is_returned_for_a_retry",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{}, failure.Transient("503")
			},
			wantErr: failure.ErrTransient,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			blobs, err := blob.NewDir(t.TempDir())
			require.NoError(t, err)
			const job = "j1"
			require.NoError(t, scratch.PutJSON(ctx, blobs, scratch.ManifestKey(job), scratch.Manifest{JobID: job, Pages: []int{1}, Hints: map[string]string{"resolution": tc.hint}}))
			imgKey := scratch.PageKey(job, 1, "jpg")
			require.NoError(t, blobs.Put(ctx, imgKey, strings.NewReader("jpeg bytes")))
			e, err := events.New(nil, events.PageRenderedID(job, 1), events.TypePageRendered, "/test", 1, job,
				events.PageRendered{JobID: job, Page: 1, Pages: 1, Route: events.RouteOCR, ImageKey: imgKey, Width: 10, Height: 20, WidthPt: 5, HeightPt: 10})
			require.NoError(t, err)
			st := recognize.New(recognize.Config{}, blobs, tc.eng, slog.New(slog.DiscardHandler))
			reply, err := st.Handle(ctx, e)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				_, done, _ := scratch.GetRecord(ctx, blobs, job, 1)
				assert.False(t, done, "a transient failure was recorded as the page's outcome")
				return
			}
			require.NoError(t, err)
			require.NotNil(t, reply)
			var pr events.PageRecognized
			require.NoError(t, events.Decode(*reply, &pr))
			assert.Equal(t, tc.wantStatus, pr.Status, "recognized = %+v", pr)
			assert.Equal(t, tc.wantEngine, pr.Engine, "recognized = %+v", pr)
			assert.True(t, strings.HasPrefix(pr.Reason, tc.wantReason), "reason %q, want prefix %q", pr.Reason, tc.wantReason)
			if tc.wantRaw != "" {
				raw, err := scratch.GetBytes(ctx, blobs, scratch.PageKey(job, 1, "raw"))
				assert.NoError(t, err)
				assert.Equal(t, tc.wantRaw, string(raw), "raw")
			}
			var side document.Layout
			err = scratch.GetJSON(ctx, blobs, scratch.BlocksKey(job, 1), &side)
			require.Equal(t, tc.wantLayout != "", err == nil, "sidecar stored (%v)", err)
			rec, _, err := scratch.GetRecord(ctx, blobs, job, 1)
			require.NoError(t, err)
			assert.Equal(t, [4]float64{5, 10, 10, 20}, [4]float64{rec.WidthPt, rec.HeightPt, float64(rec.WidthPx), float64(rec.HeightPx)}, "record's page size, points and pixels")
			if tc.wantLayout != "" {
				assert.Equal(t, tc.wantLayout, side.Source, "sidecar = %+v", side)
				assert.Equal(t, tc.wantEngine, side.Engine, "sidecar = %+v", side)
				assert.Equal(t, 10, side.WidthPx, "sidecar = %+v", side)
				assert.Equal(t, 5.0, side.WidthPt, "sidecar = %+v", side)
				require.NotEmpty(t, side.Blocks, "sidecar = %+v", side)
				assert.Equal(t, scratch.BlocksKey(job, 1), pr.BlocksKey, "recognized = %+v: names the sidecar", pr)
				assert.Equal(t, len(side.Blocks), pr.BlockCount, "recognized = %+v: counts the blocks", pr)
				assert.Equal(t, pr.BlocksKey, rec.BlocksKey, "record names the sidecar")
				if tc.wantLayout == document.SourceGrounding {
					require.NotNil(t, side.Blocks[0].BBox, "sidecar = %+v", side)
					assert.Equal(t, document.Box{0.5, 1, 1.5, 2}, *side.Blocks[0].BBox, "the box in points: x·5/10, y·10/20")
				}
			} else {
				assert.Empty(t, pr.BlocksKey, "recognized = %+v: a failed page has no sidecar", pr)
				assert.Zero(t, pr.BlockCount, "recognized = %+v", pr)
			}
			// Records are listed from pages/; the sidecar must not be one.
			recs, err := scratch.Records(ctx, blobs, job)
			assert.NoError(t, err)
			assert.Len(t, recs, 1, "Records = %v; want the one page record", recs)
		})
	}
}

// TestHandle_old_page_event_counts_as_the_last_delivery: without a
// delivery count from the transport (Knative), a page event older than the
// Trigger's retry window is on its last delivery, so a fallback may answer.
func TestHandle_old_page_event_counts_as_the_last_delivery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		age       time.Duration
		transport func(context.Context) context.Context
		want      string
	}{
		{name: "fresh_event", age: time.Second, want: "false"},
		{name: "event_older_than_the_window", age: time.Hour, want: "true"},
		{name: "transport_count_wins", age: time.Hour, want: "false", transport: func(ctx context.Context) context.Context {
			return stage.WithMaxAttempts(stage.WithAttempt(ctx, 2), 7)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			blobs, err := blob.NewDir(t.TempDir())
			require.NoError(t, err)
			imgKey := scratch.PageKey("j", 1, "jpg")
			require.NoError(t, blobs.Put(ctx, imgKey, strings.NewReader("jpeg")))
			e, err := events.New(nil, events.PageRenderedID("j", 1), events.TypePageRendered, "/test", 1, "j",
				events.PageRendered{JobID: "j", Page: 1, Pages: 1, Route: events.RouteOCR, ImageKey: imgKey})
			require.NoError(t, err)
			e.SetTime(time.Now().Add(-tc.age))
			eng := engineFunc(func(ctx context.Context, _ engine.Page) (engine.Result, error) {
				return engine.Result{Markdown: fmt.Sprint(stage.LastAttempt(ctx))}, nil
			})
			if tc.transport != nil {
				ctx = tc.transport(ctx)
			}
			st := recognize.New(recognize.Config{RetryWindow: 10 * time.Minute}, blobs, eng, slog.New(slog.DiscardHandler))
			_, err = st.Handle(ctx, e)
			require.NoError(t, err)
			md, err := scratch.GetBytes(ctx, blobs, scratch.PageKey("j", 1, "md"))
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(md), "LastAttempt seen by the engine")
		})
	}
}

// countingEngine counts the recognitions it passes on to its engine.
type countingEngine struct {
	recognize.Engine
	calls atomic.Int32
}

func (c *countingEngine) Recognize(ctx context.Context, p engine.Page) (engine.Result, error) {
	c.calls.Add(1)
	return c.Engine.Recognize(ctx, p)
}

// countingFake is the fake engine, counting its recognitions; fail, when
// set, injects an error into each (engine.Fake.Fail).
func countingFake(fail func(engine.Page) error) (*countingEngine, *atomic.Int32) {
	c := &countingEngine{Engine: &engine.Fake{Fail: fail}}
	return c, &c.calls
}

// image is the stand-in image bytes of page n.
func image(n int) []byte { return []byte(fmt.Sprintf("jpeg of page %d", n)) }

// ocrPage stores page n's image and returns its ocr.page.rendered event.
func ocrPage(t *testing.T, blobs scratch.Store, job string, n, pages int) event.Event {
	t.Helper()
	key := scratch.PageKey(job, n, "jpg")
	require.NoError(t, blobs.Put(t.Context(), key, bytes.NewReader(image(n))))
	e, err := events.New(nil, events.PageRenderedID(job, n), events.TypePageRendered, "/convert", n, job,
		events.PageRendered{JobID: job, Page: n, Pages: pages, Route: events.RouteOCR, ImageKey: key, Width: 100, Height: 140, WidthPt: 50, HeightPt: 70, TextScore: 0.25})
	require.NoError(t, err)
	return e
}

// textPage stores page n's text-layer markdown and returns its
// ocr.page.rendered event on route text.
func textPage(t *testing.T, blobs scratch.Store, job string, n, pages int, md string) event.Event {
	t.Helper()
	key := scratch.PageKey(job, n, "text.md")
	require.NoError(t, blobs.Put(t.Context(), key, strings.NewReader(md)))
	e, err := events.New(nil, events.PageRenderedID(job, n), events.TypePageRendered, "/convert", n, job,
		events.PageRendered{JobID: job, Page: n, Pages: pages, Route: events.RouteText, TextKey: key, TextScore: 0.97})
	require.NoError(t, err)
	return e
}

// recognized decodes an ocr.page.recognized reply.
func recognized(t *testing.T, reply *event.Event) events.PageRecognized {
	t.Helper()
	require.NotNil(t, reply, "want ocr.page.recognized, got no reply")
	require.Equal(t, events.TypePageRecognized, reply.Type())
	var pr events.PageRecognized
	require.NoError(t, events.Decode(*reply, &pr))
	return pr
}

func newRecognizer(blobs scratch.Store, eng recognize.Engine, cfg recognize.Config) *recognize.Recognizer {
	return recognize.New(cfg, blobs, eng, slog.New(slog.DiscardHandler))
}

// TestRecognize_ocr_page_becomes_the_engines_markdown: a page on route ocr
// is read by the engine; its markdown and raw answer are stored, its record
// written, and the reply points finalize at the markdown.
func TestRecognize_ocr_page_becomes_the_engines_markdown(t *testing.T) {
	ctx := t.Context()
	blobs := blob.NewMemory()
	eng, calls := countingFake(nil)
	e := ocrPage(t, blobs, "job-ocr", 2, 3)

	reply, err := newRecognizer(blobs, eng, recognize.Config{}).Handle(ctx, e)
	require.NoError(t, err)
	pr := recognized(t, reply)
	assert.Equal(t, events.PageRecognized{
		JobID: "job-ocr", Page: 2, Pages: 3, Status: events.PageOK, Route: events.RouteOCR, Engine: engine.NameFake,
		ResultKey: scratch.PageKey("job-ocr", 2, "md"), BlocksKey: scratch.BlocksKey("job-ocr", 2), BlockCount: 1,
	}, pr)
	assert.Equal(t, events.PageRecognizedID("job-ocr", 2), reply.ID())
	assert.Equal(t, recognize.Source, reply.Source())
	assert.EqualValues(t, 1, calls.Load())
	md, err := scratch.GetBytes(ctx, blobs, pr.ResultKey)
	require.NoError(t, err)
	assert.Equal(t, engine.FakeText(image(2)), string(md), "the engine read this page's image")
	raw, err := scratch.GetBytes(ctx, blobs, scratch.PageKey("job-ocr", 2, "raw"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), "page=2")
	rec, ok, err := scratch.GetRecord(ctx, blobs, "job-ocr", 2)
	require.NoError(t, err)
	require.True(t, ok, "the page has a record")
	assert.WithinDuration(t, time.Now(), rec.DoneAt, time.Minute, "the record says when the page was done")
	rec.DoneAt = time.Time{}
	assert.Equal(t, scratch.PageRecord{
		Page: 2, Status: events.PageOK, Route: events.RouteOCR, Engine: engine.NameFake,
		MarkdownKey: pr.ResultKey, EventID: e.ID(), TextScore: 0.25,
		WidthPt: 50, HeightPt: 70, WidthPx: 100, HeightPx: 140, BlocksKey: pr.BlocksKey, BlockCount: 1,
		ImageKey: scratch.PageKey("job-ocr", 2, "jpg"),
	}, rec)
	var side document.Layout
	require.NoError(t, scratch.GetJSON(ctx, blobs, pr.BlocksKey, &side))
	assert.Equal(t, document.SourceMarkdown, side.Source, "the fake engine reports no layout: blocks from its markdown")
	assert.Equal(t, []document.Block{{Label: document.LabelText, Text: engine.FakeText(image(2))}}, side.Blocks)
}

// TestRecognize_page_with_a_record_is_answered_from_it: a redelivered page,
// or one whose record another delivery already wrote, is answered from its
// record; the engine is not called again and the record is not rewritten.
func TestRecognize_page_with_a_record_is_answered_from_it(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  scratch.PageRecord
	}{
		{name: "ok_page", rec: scratch.PageRecord{Page: 1, Status: events.PageOK, Route: events.RouteOCR, Engine: "tesseract",
			MarkdownKey: scratch.PageKey("job-done", 1, "md"), EventID: "earlier"}},
		{name: "failed_page", rec: scratch.PageRecord{Page: 1, Status: events.PageFailed, Route: events.RouteOCR, Engine: "vllm",
			Reason: "repetition: page 1", EventID: "earlier"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			blobs := blob.NewMemory()
			e := ocrPage(t, blobs, "job-done", 1, 4)
			require.NoError(t, scratch.PutJSON(ctx, blobs, scratch.PageKey("job-done", 1, "json"), tc.rec))
			eng, calls := countingFake(nil)

			reply, err := newRecognizer(blobs, eng, recognize.Config{}).Handle(ctx, e)
			require.NoError(t, err)
			pr := recognized(t, reply)
			assert.Zero(t, calls.Load(), "the engine was called for a finished page")
			assert.Equal(t, events.PageRecognized{
				JobID: "job-done", Page: 1, Pages: 4, Status: tc.rec.Status, Route: tc.rec.Route, Engine: tc.rec.Engine,
				Reason: tc.rec.Reason, ResultKey: tc.rec.MarkdownKey,
			}, pr)
			got, _, err := scratch.GetRecord(ctx, blobs, "job-done", 1)
			require.NoError(t, err)
			assert.Equal(t, tc.rec, got, "the record was rewritten")
		})
	}
	t.Run("redelivery_after_recognition", func(t *testing.T) {
		ctx := t.Context()
		blobs := blob.NewMemory()
		e := ocrPage(t, blobs, "job-again", 1, 1)
		eng, calls := countingFake(nil)
		st := newRecognizer(blobs, eng, recognize.Config{})
		first, err := st.Handle(ctx, e)
		require.NoError(t, err)
		second, err := st.Handle(ctx, e)
		require.NoError(t, err)
		assert.EqualValues(t, 1, calls.Load(), "one engine call for two deliveries")
		assert.Equal(t, recognized(t, first), recognized(t, second))
		assert.Equal(t, first.ID(), second.ID(), "the same reply id, for brokers to dedupe")
	})
}

// TestRecognize_transient_engine_error_is_retried_without_a_record: an
// engine failure that may pass (a transient or unclassified error, the
// page deadline) is returned for the transport to retry, writes no record,
// and the retry recognizes the page.
func TestRecognize_transient_engine_error_is_retried_without_a_record(t *testing.T) {
	for _, tc := range []struct {
		name string
		eng  *engine.Fake
		cfg  recognize.Config
	}{
		{name: "transient_error", eng: &engine.Fake{Fail: func(engine.Page) error { return failure.Transient("503 from the model server") }}},
		{name: "unclassified_error", eng: &engine.Fake{Fail: func(engine.Page) error { return io.ErrUnexpectedEOF }}},
		{name: "page_deadline", eng: &engine.Fake{Latency: time.Hour}, cfg: recognize.Config{PageTimeout: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			blobs := blob.NewMemory()
			e := ocrPage(t, blobs, "job-transient", 1, 1)
			eng := &countingEngine{Engine: tc.eng}

			reply, err := newRecognizer(blobs, eng, tc.cfg).Handle(ctx, e)
			require.Error(t, err)
			assert.True(t, failure.Retryable(err), "want a retryable error, got %v", err)
			assert.Nil(t, reply)
			assert.EqualValues(t, 1, eng.calls.Load(), "the engine was asked once")
			_, done, err := scratch.GetRecord(ctx, blobs, "job-transient", 1)
			require.NoError(t, err)
			assert.False(t, done, "a transient failure was recorded as the page's outcome")
			ok, err := blobs.Exists(ctx, scratch.PageKey("job-transient", 1, "md"))
			require.NoError(t, err)
			assert.False(t, ok, "no markdown for a page that was not read")

			eng, retries := countingFake(nil)
			reply, err = newRecognizer(blobs, eng, recognize.Config{}).Handle(ctx, e)
			require.NoError(t, err)
			assert.Equal(t, events.PageOK, recognized(t, reply).Status, "the retry reads the page")
			assert.EqualValues(t, 1, retries.Load())
		})
	}
}

// TestRecognize_permanent_engine_error_records_a_failed_page: a page the
// engine cannot read is recorded as failed, with the reason, and reported
// as such; the engine is not asked again on a redelivery.
func TestRecognize_permanent_engine_error_records_a_failed_page(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		wantClass  string // the reason's prefix
		wantReason string // what the reason says
	}{
		{name: "permanent_error", err: failure.Permanent("model rejected the image"), wantClass: "permanent: ", wantReason: "model rejected the image"},
		{name: "validation_error", err: failure.Validation("image too small"), wantClass: "validation: ", wantReason: "image too small"},
		{name: "engine_gave_up", err: engine.GiveUp(engine.ReasonRepetition, "la la la", "page 1: 3 attempts"), wantClass: "repetition: ", wantReason: "page 1: 3 attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			blobs := blob.NewMemory()
			e := ocrPage(t, blobs, "job-permanent", 1, 2)
			eng, calls := countingFake(func(engine.Page) error { return tc.err })
			st := newRecognizer(blobs, eng, recognize.Config{})

			reply, err := st.Handle(ctx, e)
			require.NoError(t, err, "a failed page is an outcome, not an error")
			pr := recognized(t, reply)
			assert.Equal(t, events.PageFailed, pr.Status)
			assert.Equal(t, engine.NameFake, pr.Engine)
			assert.Empty(t, pr.ResultKey, "a failed page has no markdown")
			assert.True(t, strings.HasPrefix(pr.Reason, tc.wantClass), "reason %q, want prefix %q", pr.Reason, tc.wantClass)
			assert.Contains(t, pr.Reason, tc.wantReason)
			rec, ok, err := scratch.GetRecord(ctx, blobs, "job-permanent", 1)
			require.NoError(t, err)
			require.True(t, ok, "the failed page has a record")
			assert.WithinDuration(t, time.Now(), rec.DoneAt, time.Minute, "the record says when the page was done")
			rec.DoneAt = time.Time{}
			assert.Equal(t, scratch.PageRecord{
				Page: 1, Status: events.PageFailed, Route: events.RouteOCR, Engine: engine.NameFake, Reason: pr.Reason, EventID: e.ID(),
				WidthPt: 50, HeightPt: 70, WidthPx: 100, HeightPx: 140, // the failed page keeps its size and image
				ImageKey: scratch.PageKey("job-permanent", 1, "jpg"),
			}, rec)

			_, err = st.Handle(ctx, e)
			require.NoError(t, err)
			assert.EqualValues(t, 1, calls.Load(), "a failed page is not read again")
		})
	}
}

// TestRecognize_text_route_never_calls_the_engine: a page on route text
// takes its own text layer as its markdown.
func TestRecognize_text_route_never_calls_the_engine(t *testing.T) {
	ctx := t.Context()
	blobs := blob.NewMemory()
	const md = "# Page 3: Distribution\n\nCrews completed the trunk main."
	e := textPage(t, blobs, "job-text", 3, 6, md)
	eng, calls := countingFake(func(engine.Page) error { return failure.Permanent("must not be called") })

	reply, err := newRecognizer(blobs, eng, recognize.Config{}).Handle(ctx, e)
	require.NoError(t, err)
	pr := recognized(t, reply)
	assert.Zero(t, calls.Load(), "the engine was called for a text page")
	assert.Equal(t, events.PageRecognized{
		JobID: "job-text", Page: 3, Pages: 6, Status: events.PageOK, Route: events.RouteText, Engine: recognize.EngineTextLayer,
		ResultKey: scratch.PageKey("job-text", 3, "md"),
	}, pr, "an event naming no sidecar (one from before sidecars) is a page without blocks")
	got, err := scratch.GetBytes(ctx, blobs, pr.ResultKey)
	require.NoError(t, err)
	assert.Equal(t, md, string(got))
	rec, ok, err := scratch.GetRecord(ctx, blobs, "job-text", 3)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, recognize.EngineTextLayer, rec.Engine)
	assert.InDelta(t, 0.97, rec.TextScore, 1e-9, "the text-layer score is kept")
	raw, err := blobs.Exists(ctx, scratch.PageKey("job-text", 3, "raw"))
	require.NoError(t, err)
	assert.False(t, raw, "a text page has no raw engine answer")
}

// TestRecognize_text_page_names_the_layout_convert_stored: a text page's
// record and reply name the sidecar convert wrote, with its block count.
func TestRecognize_text_page_names_the_layout_convert_stored(t *testing.T) {
	box := document.Box{72, 72, 300, 90}
	for _, tc := range []struct {
		name      string
		side      *document.Layout // stored by "convert"; nil = none
		eventKey  bool             // the event names the sidecar
		wantKey   bool
		wantCount int
	}{
		{"sidecar_named_and_stored", &document.Layout{Source: document.SourceTextLayer, Blocks: []document.Block{
			{Label: document.LabelTitle, BBox: &box, Text: "# T"}, {Label: document.LabelText, BBox: &box, Text: "body"},
		}}, true, true, 2},
		{"sidecar_named_but_gone", nil, true, false, 0},
		{"event_from_before_sidecars", nil, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			blobs := blob.NewMemory()
			e := textPage(t, blobs, "job-side", 1, 1, "# T\n\nbody")
			var p events.PageRendered
			require.NoError(t, events.Decode(e, &p))
			if tc.eventKey {
				p.BlocksKey = scratch.BlocksKey("job-side", 1)
				require.NoError(t, e.SetData(event.ApplicationJSON, p))
			}
			if tc.side != nil {
				require.NoError(t, scratch.PutJSON(ctx, blobs, p.BlocksKey, tc.side))
			}
			reply, err := newRecognizer(blobs, &engine.Fake{}, recognize.Config{}).Handle(ctx, e)
			require.NoError(t, err)
			pr := recognized(t, reply)
			if tc.wantKey {
				assert.Equal(t, p.BlocksKey, pr.BlocksKey, "recognized = %+v", pr)
			} else {
				assert.Empty(t, pr.BlocksKey, "recognized = %+v", pr)
			}
			assert.Equal(t, tc.wantCount, pr.BlockCount, "recognized = %+v", pr)
			rec, _, err := scratch.GetRecord(ctx, blobs, "job-side", 1)
			require.NoError(t, err)
			assert.Equal(t, pr.BlocksKey, rec.BlocksKey, "record")
			assert.Equal(t, tc.wantCount, rec.BlockCount, "record")
		})
	}
}

// TestRecognize_unusable_page_event_is_a_permanent_error: an event that
// names no job or page, or cannot be decoded, is not retried.
func TestRecognize_unusable_page_event_is_a_permanent_error(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(e *event.Event)
	}{
		{name: "no_job", edit: func(e *event.Event) {
			require.NoError(t, e.SetData(event.ApplicationJSON, events.PageRendered{Page: 1, Route: events.RouteOCR}))
		}},
		{name: "page_zero", edit: func(e *event.Event) {
			require.NoError(t, e.SetData(event.ApplicationJSON, events.PageRendered{JobID: "j", Route: events.RouteOCR}))
		}},
		{name: "undecodable_data", edit: func(e *event.Event) { e.DataEncoded = []byte("{not json") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blobs := blob.NewMemory()
			e := ocrPage(t, blobs, "j", 1, 1)
			tc.edit(&e)
			eng, calls := countingFake(nil)
			reply, err := newRecognizer(blobs, eng, recognize.Config{}).Handle(t.Context(), e)
			assert.Nil(t, reply)
			require.Error(t, err)
			assert.ErrorIs(t, err, failure.ErrPermanent)
			assert.Zero(t, calls.Load())
		})
	}
}
