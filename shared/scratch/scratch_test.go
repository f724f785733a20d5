package scratch_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func newStore(t *testing.T) *blob.Dir {
	t.Helper()
	d, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	return d
}

func terminal(t *testing.T, job, typ, id string) event.Event {
	t.Helper()
	e, err := events.New(nil, id, typ, "/test", 0, job, map[string]string{"job_id": job})
	require.NoError(t, err)
	return e
}

func TestConclude_first_terminal_wins(t *testing.T) {
	ctx := context.Background()
	const job = "job-1"
	completed := terminal(t, job, events.TypeJobCompleted, events.CompletedID(job))
	failed := terminal(t, job, events.TypeJobFailed, events.FailedID(job))
	for _, tc := range []struct {
		name string
		// calls are concluded in order; want is each call's emit.
		calls      []event.Event
		want       []bool
		wantStatus string
		wantID     string
	}{
		{"completed_first", []event.Event{completed}, []bool{true}, "completed", completed.ID()},
		{"failed_first", []event.Event{failed}, []bool{true}, "failed", failed.ID()},
		{"same_event_redelivered_is_emitted_again", []event.Event{completed, completed, completed}, []bool{true, true, true}, "completed", completed.ID()},
		{"failed_after_completed_is_dropped", []event.Event{completed, failed}, []bool{true, false}, "completed", completed.ID()},
		{"completed_after_failed_is_dropped", []event.Event{failed, completed, failed}, []bool{true, false, true}, "failed", failed.ID()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			for i, e := range tc.calls {
				got, err := scratch.Conclude(ctx, s, job, "cause-1", e)
				require.NoError(t, err, "Conclude #%d", i+1)
				assert.Equal(t, tc.want[i], got, "Conclude #%d (%s)", i+1, e.ID())
			}
			o, ok, err := scratch.GetOutcome(ctx, s, job)
			require.NoError(t, err, "GetOutcome")
			require.True(t, ok, "GetOutcome found no outcome")
			assert.Equal(t, tc.wantStatus, o.Status, "outcome status")
			assert.Equal(t, tc.wantID, o.EventID, "outcome event id")
			var stored event.Event
			require.NoError(t, json.Unmarshal(o.Event, &stored), "stored event")
			assert.Equal(t, tc.wantID, stored.ID(), "stored event id")
		})
	}
}

func TestConclude_jobs_are_independent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, job := range []string{"a", "b"} {
		emit, err := scratch.Conclude(ctx, s, job, "cause-1", terminal(t, job, events.TypeJobCompleted, events.CompletedID(job)))
		if assert.NoError(t, err, "Conclude(%s)", job) {
			assert.True(t, emit, "Conclude(%s) emit", job)
		}
	}
}

func TestConclude_concurrent_terminals_emit_exactly_once(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const job, n = "race", 8
	var wg sync.WaitGroup
	emits := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		// Half completed, half failed: distinct ids, one must win.
		typ, id := events.TypeJobCompleted, events.CompletedID(job)+"-"+string(rune('a'+i))
		if i%2 == 1 {
			typ, id = events.TypeJobFailed, events.FailedID(job)+"-"+string(rune('a'+i))
		}
		e := terminal(t, job, typ, id)
		wg.Go(func() { emits[i], errs[i] = scratch.Conclude(ctx, s, job, "cause-1", e) })
	}
	wg.Wait()
	won := 0
	for i := range n {
		assert.NoError(t, errs[i], "Conclude #%d", i)
		if emits[i] {
			won++
		}
	}
	assert.Equal(t, 1, won, "concurrent terminal events emitted, want exactly 1")
}

func TestEnd(t *testing.T) {
	ctx := context.Background()
	const job = "job-e"
	completed := terminal(t, job, events.TypeJobCompleted, events.CompletedID(job))
	failed := terminal(t, job, events.TypeJobFailed, events.FailedID(job))
	cause := terminal(t, job, events.TypePageRecognized, events.PageRecognizedID(job, 1))
	s := newStore(t)
	for _, tc := range []struct {
		name   string
		e      event.Event
		wantID string // "" = nil reply
	}{
		{"first_terminal_is_replied", failed, failed.ID()},
		{"same_terminal_again_is_replied_again", failed, failed.ID()},
		{"other_terminal_gets_no_reply", completed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scratch.End(ctx, s, job, cause, tc.e)
			require.NoError(t, err)
			if tc.wantID == "" {
				assert.Nil(t, got, "End")
				return
			}
			if assert.NotNil(t, got, "End = nil, want %s", tc.wantID) {
				assert.Equal(t, tc.wantID, got.ID(), "End")
			}
		})
	}
	t.Run("store_error_is_transient", func(t *testing.T) {
		broken := failingStore{Store: newStore(t), err: errors.New("disk on fire")}
		got, err := scratch.End(ctx, broken, job, cause, completed)
		assert.Nil(t, got, "End")
		require.Error(t, err, "End")
		assert.True(t, failure.Retryable(err), "End err = %v, want a transient error", err)
	})
}

// failingStore fails Create and Put with err.
type failingStore struct {
	scratch.Store
	err error
}

func (f failingStore) Create(context.Context, string, io.Reader) error { return f.err }
func (f failingStore) Put(context.Context, string, io.Reader) error    { return f.err }

func TestRecords(t *testing.T) {
	ctx := context.Background()
	const job = "job-r"
	put := func(t *testing.T, s scratch.Store, key, body string) {
		t.Helper()
		require.NoError(t, s.Put(ctx, key, strings.NewReader(body)), "Put(%q)", key)
	}
	t.Run("only_json_records_count", func(t *testing.T) {
		s := newStore(t)
		for _, r := range []scratch.PageRecord{
			{Page: 1, Status: events.PageOK, Route: events.RouteOCR, MarkdownKey: scratch.PageKey(job, 1, "md")},
			{Page: 3, Status: events.PageFailed, Route: events.RouteText, Reason: "transient: x"},
		} {
			require.NoError(t, scratch.PutJSON(ctx, s, scratch.PageKey(job, r.Page, "json"), r))
		}
		put(t, s, scratch.PageKey(job, 1, "md"), "# page one")
		put(t, s, scratch.PageKey(job, 2, "md"), "# page two, not done")
		put(t, s, scratch.PageKey(job, 2, "raw"), "{not json")
		put(t, s, scratch.PageKey(job, 2, "jpg"), "\xff\xd8")
		put(t, s, scratch.PageKey("other", 5, "json"), `{"page":5}`)
		recs, err := scratch.Records(ctx, s, job)
		require.NoError(t, err)
		msg := "Records = %+v, want pages 1 (ok) and 3 (failed) only"
		assert.Len(t, recs, 2, msg, recs)
		assert.Equal(t, events.PageOK, recs[1].Status, msg, recs)
		assert.Equal(t, events.PageFailed, recs[3].Status, msg, recs)
	})
	t.Run("empty_job", func(t *testing.T) {
		recs, err := scratch.Records(ctx, newStore(t), job)
		require.NoError(t, err)
		assert.Empty(t, recs)
	})
	t.Run("corrupt_record_is_an_error", func(t *testing.T) {
		s := newStore(t)
		put(t, s, scratch.PageKey(job, 1, "json"), "{truncated")
		_, err := scratch.Records(ctx, s, job)
		assert.Error(t, err, "Records with a corrupt record succeeded")
	})
}

// countingGets counts the objects a store opens.
type countingGets struct {
	scratch.Store
	gets int
}

func (c *countingGets) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.gets++
	return c.Store.Get(ctx, key)
}

func TestDonePages(t *testing.T) {
	ctx := context.Background()
	const job = "job-d"
	s := newStore(t)
	for _, k := range []string{
		scratch.PageKey(job, 1, "json"), scratch.PageKey(job, 1, "md"), scratch.PageKey(job, 2, "jpg"),
		scratch.PageKey(job, 3, "text.md"), scratch.PageKey(job, 12, "json"), scratch.PagesPrefix(job) + "notes.json",
		scratch.BlocksKey(job, 2), scratch.PageKey(job+"x", 5, "json"),
	} {
		require.NoError(t, s.Put(ctx, k, strings.NewReader("{}")), "Put(%q)", k)
	}
	for _, tc := range []struct {
		name string
		job  string
		want map[int]bool
	}{
		{name: "pages_with_a_record", job: job, want: map[int]bool{1: true, 12: true}},
		{name: "empty_job", job: "job-none", want: map[int]bool{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &countingGets{Store: s}
			done, err := scratch.DonePages(ctx, c, tc.job)
			require.NoError(t, err)
			assert.Equal(t, tc.want, done)
			assert.Zero(t, c.gets, "DonePages opened objects; it must only list keys")
		})
	}
}

func TestGetRecord(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	want := scratch.PageRecord{Page: 2, Status: events.PageOK, Route: events.RouteOCR, Engine: "fake", EventID: "e"}
	require.NoError(t, scratch.PutJSON(ctx, s, scratch.PageKey("j", 2, "json"), want))
	for _, tc := range []struct {
		name   string
		page   int
		wantOK bool
	}{
		{"done_page", 2, true},
		{"missing_page_is_not_an_error", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := scratch.GetRecord(ctx, s, "j", tc.page)
			require.NoError(t, err)
			assert.Equal(t, tc.wantOK, ok, "GetRecord ok")
			if ok {
				assert.Equal(t, want, got, "GetRecord")
			}
		})
	}
}

func TestGetJSON_missing_is_ErrNotFound(t *testing.T) {
	var v map[string]any
	err := scratch.GetJSON(context.Background(), newStore(t), "jobs/x/manifest.json", &v)
	assert.ErrorIs(t, err, scratch.ErrNotFound)
}

func TestKeys_are_valid_blob_keys(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
	}{
		{"manifest", scratch.ManifestKey("j")},
		{"page", scratch.PageKey("j", 12, "md")},
		{"lock", scratch.LockKey("j")},
		{"result", scratch.ResultKey("j")},
		{"outcome", scratch.OutcomeKey("j")},
		{"dead_letter_plain", scratch.DeadLetterKey("job-1-p1-rendered")},
		{"dead_letter_slashes", scratch.DeadLetterKey("a/b\\c")},
		{"dead_letter_dot_dot", scratch.DeadLetterKey("../../etc/passwd")},
		{"dead_letter_dots_only", scratch.DeadLetterKey("..")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.True(t, scratch.ValidKey(tc.key), "%q is not a valid blob key", tc.key)
		})
	}
	t.Run("dead_letters_stay_under_deadletters", func(t *testing.T) {
		for _, id := range []string{"x", "../x", "a/../../b", "..\\..\\c"} {
			k := scratch.DeadLetterKey(id)
			assert.True(t, strings.HasPrefix(k, "deadletters/"), "DeadLetterKey(%q) = %q escapes deadletters/", id, k)
			assert.Equal(t, 1, strings.Count(k, "/"), "DeadLetterKey(%q) = %q escapes deadletters/", id, k)
		}
	})
}

func TestRecognizedEvent(t *testing.T) {
	parent := terminal(t, "j", events.TypePageRendered, "parent")
	parent.SetExtension(events.ExtTraceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	rec := scratch.PageRecord{Page: 4, Status: events.PageFailed, Route: events.RouteOCR, Reason: "transient: gone"}
	e, err := scratch.RecognizedEvent(&parent, "/src", "j", 6, rec)
	require.NoError(t, err)
	assert.Equal(t, events.PageRecognizedID("j", 4), e.ID(), "event id")
	assert.Equal(t, events.TypePageRecognized, e.Type(), "event type")
	assert.Equal(t, "/src", e.Source(), "event source")
	assert.Equal(t, parent.Extensions()[events.ExtTraceparent], e.Extensions()[events.ExtTraceparent], "traceparent not carried over")
	var p events.PageRecognized
	require.NoError(t, events.Decode(*e, &p))
	assert.Equal(t, "j", p.JobID, "payload = %+v", p)
	assert.Equal(t, 4, p.Page, "payload = %+v", p)
	assert.Equal(t, 6, p.Pages, "payload = %+v", p)
	assert.Equal(t, events.PageFailed, p.Status, "payload = %+v", p)
	assert.Equal(t, rec.Reason, p.Reason, "payload = %+v", p)
}

// TestEnded: a job that has ended replies its terminal event again only to
// a redelivery of the event that decided it (whose first reply may have
// been lost), and nothing to any other late event.
func TestEnded(t *testing.T) {
	ctx := context.Background()
	const job = "job-x"
	s := newStore(t)
	again, ended, err := scratch.Ended(ctx, s, job, "p3-recognized")
	require.NoError(t, err)
	assert.False(t, ended, "a job without an outcome has not ended")
	assert.Nil(t, again)

	completed := terminal(t, job, events.TypeJobCompleted, events.CompletedID(job))
	cause := terminal(t, job, events.TypePageRecognized, "p3-recognized")
	reply, err := scratch.End(ctx, s, job, cause, completed)
	require.NoError(t, err)
	require.NotNil(t, reply)

	for _, tc := range []struct {
		name, cause string
		wantAgain   bool
	}{
		{"redelivered_deciding_event_replies_again", "p3-recognized", true},
		{"other_late_event_replies_nothing", "p2-recognized", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again, ended, err := scratch.Ended(ctx, s, job, tc.cause)
			require.NoError(t, err)
			assert.True(t, ended)
			if !tc.wantAgain {
				assert.Nil(t, again)
				return
			}
			require.NotNil(t, again)
			assert.Equal(t, completed.ID(), again.ID(), "the terminal event keeps its id, so consumers drop a duplicate")
			assert.Equal(t, completed.Type(), again.Type())
			assert.JSONEq(t, string(completed.Data()), string(again.Data()))
		})
	}
}
