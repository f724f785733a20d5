package deadletter_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/deadletter"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func newStage(t *testing.T) (*deadletter.Sink, *blob.Dir) {
	t.Helper()
	d, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	return deadletter.New(d, nil, content.Recipe{}, slog.New(slog.DiscardHandler)), d
}

// withKnative adds the extensions Knative sets on a dead letter.
func withKnative(e event.Event, code any, dest, body string) event.Event {
	if code != nil {
		e.SetExtension(events.ExtErrorCode, code)
	}
	if dest != "" {
		e.SetExtension(events.ExtErrorDest, dest)
	}
	if body != "" {
		e.SetExtension(events.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(body)))
	}
	return e
}

func deadPage(t *testing.T, job string, page, pages int) event.Event {
	t.Helper()
	e, err := events.New(nil, events.PageRenderedID(job, page), events.TypePageRendered, "/convert", page, job,
		events.PageRendered{JobID: job, Page: page, Pages: pages, Route: events.RouteOCR, ImageKey: scratch.PageKey(job, page, "jpg")})
	require.NoError(t, err)
	return withKnative(e, int32(503), "http://ocrflow-recognize.ocrflow.svc", "model server unavailable")
}

func deadJob(t *testing.T, job string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(job)
	e.SetType(events.TypeJob)
	e.SetSource("/platform")
	require.NoError(t, e.SetData(event.ApplicationJSON, map[string]any{"job_id": job, "uow": "ocr"}))
	return withKnative(e, "500", "http://ocrflow-convert.ocrflow.svc", "internal error")
}

func TestReason(t *testing.T) {
	base := func() event.Event {
		e := event.New()
		e.SetID("x")
		e.SetType("t")
		e.SetSource("/s")
		return e
	}
	for _, tc := range []struct {
		name       string
		e          event.Event
		wantCode   int
		wantDest   string
		wantReason string
	}{
		{"int32_code", withKnative(base(), int32(503), "http://svc", "busy"), 503, "http://svc", "busy"},
		{"string_code", withKnative(base(), "429", "http://svc", "slow down"), 429, "http://svc", "slow down"},
		{"go_int_code_is_normalised", withKnative(base(), 500, "", "x"), 500, "", "x"},
		{"non_numeric_string_code", withKnative(base(), "teapot", "", "x"), 0, "", "x"},
		{"no_extensions", base(), 0, "", "no response body"},
		{"utf8_body", withKnative(base(), nil, "", "Zeitüberschreitung → 東京"), 0, "", "Zeitüberschreitung → 東京"},
		{
			name: "data_not_base64_is_kept_verbatim",
			e: func() event.Event {
				e := base()
				e.SetExtension(events.ExtErrorData, "plain text!")
				return e
			}(),
			wantReason: "plain text!",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, dest, reason := deadletter.Reason(tc.e)
			assert.Equal(t, tc.wantCode, code, "code")
			assert.Equal(t, tc.wantDest, dest, "dest")
			assert.Equal(t, tc.wantReason, reason, "reason")
		})
	}
}

// kept reads the dead letter kept for id.
func kept(t *testing.T, s scratch.Store, id string) scratch.DeadLetter {
	t.Helper()
	var r scratch.DeadLetter
	require.NoError(t, scratch.GetJSON(context.Background(), s, scratch.DeadLetterKey(id), &r), "dead letter %s not kept", id)
	return r
}

func TestHandle_dead_page_becomes_a_failed_page(t *testing.T) {
	ctx := context.Background()
	stage, store := newStage(t)
	dead := deadPage(t, "job-1", 2, 5)
	reply, err := stage.Handle(ctx, dead)
	require.NoError(t, err)
	require.NotNil(t, reply, "no reply: finalize would wait for the page forever")
	assert.Equal(t, events.TypePageRecognized, reply.Type())
	assert.Equal(t, events.PageRecognizedID("job-1", 2), reply.ID())
	assert.Equal(t, "job-1", reply.Extensions()[events.ExtJob], "reply ocrjob")
	var p events.PageRecognized
	require.NoError(t, events.Decode(*reply, &p))
	assert.Equal(t, "job-1", p.JobID, "payload = %+v", p)
	assert.Equal(t, 2, p.Page, "payload = %+v", p)
	assert.Equal(t, 5, p.Pages, "payload = %+v", p)
	assert.Equal(t, events.PageFailed, p.Status, "payload = %+v", p)
	for _, want := range []string{"transient", "503", "model server unavailable"} {
		assert.Contains(t, p.Reason, want)
	}
	rec, ok, err := scratch.GetRecord(ctx, store, "job-1", 2)
	require.NoError(t, err)
	require.True(t, ok, "page record not written")
	assert.Equal(t, events.PageFailed, rec.Status, "record = %+v", rec)
	assert.Equal(t, dead.ID(), rec.EventID, "record = %+v", rec)
	assert.Equal(t, p.Reason, rec.Reason, "record has the reply's reason")
	r := kept(t, store, dead.ID())
	assert.Equal(t, 503, r.Code)
	assert.Equal(t, "http://ocrflow-recognize.ocrflow.svc", r.Dest)
	assert.Equal(t, "model server unavailable", r.Reason)
	assert.Equal(t, dead.ID(), r.Event.ID())
	assert.False(t, r.ReceivedAt.IsZero(), "kept record has no received_at")
}

func TestHandle_dead_page_already_done_keeps_its_result(t *testing.T) {
	ctx := context.Background()
	stage, store := newStage(t)
	done := scratch.PageRecord{Page: 3, Status: events.PageOK, Route: events.RouteOCR, Engine: "fake", MarkdownKey: scratch.PageKey("job-2", 3, "md"), EventID: "earlier"}
	require.NoError(t, scratch.PutJSON(ctx, store, scratch.PageKey("job-2", 3, "json"), done))
	reply, err := stage.Handle(ctx, deadPage(t, "job-2", 3, 4))
	require.NoError(t, err)
	require.NotNil(t, reply)
	var p events.PageRecognized
	require.NoError(t, events.Decode(*reply, &p))
	assert.Equal(t, events.PageOK, p.Status, "reply = %+v, want the page's existing ok result", p)
	assert.Equal(t, done.MarkdownKey, p.ResultKey, "reply = %+v, want the page's existing ok result", p)
	rec, _, _ := scratch.GetRecord(ctx, store, "job-2", 3)
	assert.Equal(t, done, rec, "record overwritten")
}

func TestHandle_dead_job(t *testing.T) {
	ctx := context.Background()
	t.Run("a_dead_continuation_fails_its_job", func(t *testing.T) {
		stage, store := newStage(t)
		cont, err := events.New(nil, events.ContinueID("job-9", 40), events.TypeConvertContinue, "/convert", 0, "job-9",
			events.ConvertContinue{JobID: "job-9", Next: 40, Job: []byte(`{}`)})
		require.NoError(t, err)
		reply, err := stage.Handle(ctx, withKnative(cont, int32(503), "http://ocrflow-convert.ocrflow.svc", "render timed out"))
		require.NoError(t, err)
		require.NotNil(t, reply, "want ocr.job.failed for job-9")
		assert.Equal(t, events.TypeJobFailed, reply.Type())
		assert.Equal(t, events.FailedID("job-9"), reply.ID())
		o, ok, err := scratch.GetOutcome(ctx, store, "job-9")
		require.NoError(t, err)
		assert.True(t, ok, "job-9 has an outcome")
		assert.Equal(t, "failed", o.Status)
	})
	t.Run("fails_the_job_once_per_terminal_event", func(t *testing.T) {
		stage, store := newStage(t)
		first, err := stage.Handle(ctx, deadJob(t, "job-3"))
		require.NoError(t, err)
		require.NotNil(t, first, "want ocr.job.failed")
		assert.Equal(t, events.TypeJobFailed, first.Type())
		assert.Equal(t, events.FailedID("job-3"), first.ID())
		var f events.JobFailed
		require.NoError(t, events.Decode(*first, &f))
		assert.Equal(t, "job-3", f.JobID, "payload = %+v", f)
		assert.Equal(t, string(failure.TypeTransient), f.ErrorType, "payload = %+v", f)
		assert.Contains(t, f.Message, "internal error")
		assert.LessOrEqual(t, len(f.Message), 768, "message over the 768-byte budget")
		o, ok, err := scratch.GetOutcome(ctx, store, "job-3")
		require.NoError(t, err)
		assert.True(t, ok, "job-3 has an outcome")
		assert.Equal(t, "failed", o.Status)
		assert.Equal(t, first.ID(), o.EventID, "failed by the reply")
		kept(t, store, "job-3")

		// A second dead letter for the job (here: finalize's event, tagged
		// with the job) decides nothing new: it yields the same terminal
		// event id, which Conclude re-emits so a crash between concluding
		// and replying cannot lose it; brokers dedupe by id.
		recognized, err := events.New(nil, events.PageRecognizedID("job-3", 1), events.TypePageRecognized, "/recognize", 1, "job-3",
			events.PageRecognized{JobID: "job-3", Page: 1, Pages: 1, Status: events.PageOK})
		require.NoError(t, err)
		second, err := stage.Handle(ctx, withKnative(recognized, int32(500), "http://ocrflow-finalize", "boom"))
		require.NoError(t, err)
		require.NotNil(t, second, "want the same %s again", first.ID())
		assert.Equal(t, first.ID(), second.ID(), "second dead letter replies the same terminal event")
		kept(t, store, recognized.ID())
	})
	t.Run("job_already_completed_gets_no_reply", func(t *testing.T) {
		stage, store := newStage(t)
		completed, err := events.New(nil, events.CompletedID("job-4"), events.TypeJobCompleted, "/finalize", 0, "job-4", events.JobCompleted{JobID: "job-4"})
		require.NoError(t, err)
		emit, err := scratch.Conclude(ctx, store, "job-4", "another-event", completed)
		require.NoError(t, err)
		require.True(t, emit, "Conclude")
		reply, err := stage.Handle(ctx, deadJob(t, "job-4"))
		require.NoError(t, err)
		assert.Nil(t, reply, "want no reply: the job already completed")
		kept(t, store, "job-4")
	})
}

func TestHandle_dead_letters_without_an_outcome_are_only_kept(t *testing.T) {
	ctx := context.Background()
	mk := func(id, typ string, data any, ext map[string]string) event.Event {
		e := event.New()
		e.SetID(id)
		e.SetType(typ)
		e.SetSource("/x")
		require.NoError(t, e.SetData(event.ApplicationJSON, data))
		for k, v := range ext {
			e.SetExtension(k, v)
		}
		return e
	}
	for _, tc := range []struct {
		name string
		e    event.Event
	}{
		{"lifecycle_event", mk("j-started", events.TypeJobStarted, map[string]any{"job_id": "j"}, map[string]string{events.ExtJob: "j"})},
		{"recognized_without_job_extension", mk("p-1", events.TypePageRecognized, map[string]any{"page": 1}, nil)},
		{"page_without_job_id", mk("p-2", events.TypePageRendered, map[string]any{"page": 1}, nil)},
		// Malformed JSON data cannot be marshalled as it is: the dead
		// letter must still be kept (its bytes, base64), not fail on every
		// delivery.
		{"page_with_undecodable_data", func() event.Event {
			e := mk("p-3", events.TypePageRendered, nil, nil)
			e.DataEncoded = []byte("{not json")
			return e
		}()},
		{"id_with_path_characters", mk("../../etc/passwd", "other.type", map[string]any{}, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stage, store := newStage(t)
			reply, err := stage.Handle(ctx, tc.e)
			require.NoError(t, err)
			assert.Nil(t, reply, "want no reply")
			r := kept(t, store, tc.e.ID())
			assert.Equal(t, tc.e.ID(), r.Event.ID(), "kept event id")
			assert.Equal(t, tc.e.Data(), r.Event.Data(), "kept event data")
		})
	}
}

// brokenStore fails every write.
type brokenStore struct{ scratch.Store }

var errDisk = errors.New("disk full")

func (brokenStore) Put(context.Context, string, io.Reader) error    { return errDisk }
func (brokenStore) Create(context.Context, string, io.Reader) error { return errDisk }

func TestHandle_store_failure_is_transient(t *testing.T) {
	_, dir := newStage(t)
	stage := deadletter.New(brokenStore{dir}, nil, content.Recipe{}, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		name string
		e    event.Event
	}{
		{"page", deadPage(t, "job-5", 1, 1)},
		{"job", deadJob(t, "job-5")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := stage.Handle(context.Background(), tc.e)
			assert.Nil(t, reply)
			require.ErrorIs(t, err, errDisk)
			assert.True(t, failure.Retryable(err), "want a transient error, got %v", err)
		})
	}
}

func TestHandle_long_multibyte_reason_stays_valid_utf8(t *testing.T) {
	stage, _ := newStage(t)
	// Only 3-byte runes: with destinations of three consecutive lengths,
	// at least one byte cut of each limit falls inside a rune.
	body := strings.Repeat("€", 400)
	pageReason := func(t *testing.T, reply *event.Event) string {
		var p events.PageRecognized
		require.NoError(t, events.Decode(*reply, &p))
		return p.Reason
	}
	jobMessage := func(t *testing.T, reply *event.Event) string {
		var f events.JobFailed
		require.NoError(t, events.Decode(*reply, &f))
		return f.Message
	}
	for _, dest := range []string{"http://r", "http://rr", "http://rrr"} {
		for _, tc := range []struct {
			name   string
			e      event.Event
			reason func(t *testing.T, reply *event.Event) string
		}{
			{"failed_page_reason", withKnative(deadPage(t, "job-6", 1, 1), int32(504), dest, body), pageReason},
			{"failed_job_message", withKnative(deadJob(t, "job-7"), int32(504), dest, body), jobMessage},
		} {
			t.Run(tc.name+"/"+dest, func(t *testing.T) {
				reply, err := stage.Handle(context.Background(), tc.e)
				require.NoError(t, err)
				require.NotNil(t, reply)
				got := tc.reason(t, reply)
				assert.LessOrEqual(t, len(got), 768, "reason over the 768-byte budget")
				assert.Contains(t, got, "504", "reason %q lost the status", got[:min(len(got), 80)])
				assert.True(t, utf8.ValidString(got), "reason is not valid UTF-8")
				assert.NotContains(t, got, string(utf8.RuneError), "the cut fell inside a rune (U+FFFD in the reply)")
			})
		}
	}
}

// traces records the failure traces a content store would keep.
type traces struct {
	got []content.Failure
	err error
}

func (r *traces) RecordFailure(_ context.Context, f content.Failure) error {
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, f)
	return nil
}

// A job that dies in the dead-letter stage leaves the same trace in the
// content store as one that fails in convert or finalize: keyed like its
// result would have been, once, and only when the dead letter ends it.
func TestHandle_dead_job_leaves_a_failure_trace(t *testing.T) {
	ctx := context.Background()
	recipe := content.Recipe{PipelineVersion: "1", Engine: "fake", Model: "fake", Mode: "default"}
	submitted := func(t *testing.T, store scratch.Store, id string) {
		e, err := job.NewEvent(job.Spec{ID: id, ContentID: "content-" + id, TenantID: "tenant-a", OwnerID: "owner-a",
			Hints: map[string]string{"resolution": "base"}})
		require.NoError(t, err)
		require.NoError(t, scratch.Submit(ctx, store, id, "test", e))
	}
	for _, tc := range []struct {
		name      string
		submitted bool
		ended     bool
		storeErr  error
		want      int
		wantErr   bool
	}{
		{name: "submitted_job_leaves_one_trace", submitted: true, want: 1},
		{name: "job_without_a_source_leaves_none", want: 0},
		{name: "job_ended_already_leaves_none", submitted: true, ended: true, want: 0},
		{name: "transient_store_trouble_is_retried", submitted: true, storeErr: failure.Transient("simple-content down"), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := blob.NewDir(t.TempDir())
			require.NoError(t, err)
			rec := &traces{err: tc.storeErr}
			sink := deadletter.New(d, rec, recipe, slog.New(slog.DiscardHandler))
			if tc.submitted {
				submitted(t, d, "job-t")
			}
			if tc.ended {
				done, err := events.New(nil, events.CompletedID("job-t"), events.TypeJobCompleted, "/finalize", 0, "job-t", events.JobCompleted{JobID: "job-t"})
				require.NoError(t, err)
				_, err = scratch.Conclude(ctx, d, "job-t", "other", done)
				require.NoError(t, err)
			}
			reply, err := sink.Handle(ctx, deadJob(t, "job-t"))
			if tc.wantErr {
				require.Error(t, err)
				assert.True(t, failure.Retryable(err))
				assert.Nil(t, reply)
				_, ended, err := scratch.GetOutcome(ctx, d, "job-t")
				require.NoError(t, err)
				assert.False(t, ended, "no outcome before the trace is kept")
				return
			}
			require.NoError(t, err)
			require.Len(t, rec.got, tc.want)
			if tc.want == 1 {
				f := rec.got[0]
				assert.Equal(t, "content-job-t", f.ContentID)
				assert.Equal(t, "tenant-a", f.TenantID)
				assert.Equal(t, recipe.Key("content-job-t", "base"), f.IdempotencyKey)
				assert.Equal(t, string(failure.TypeTransient), f.ErrorType)
				assert.Contains(t, f.Message, "retries exhausted")
				again, err := sink.Handle(ctx, deadJob(t, "job-t"))
				require.NoError(t, err)
				assert.NotNil(t, again, "the deciding dead letter's redelivery replies again")
				assert.Len(t, rec.got, 1, "a redelivery leaves no second trace")
			}
		})
	}
}
