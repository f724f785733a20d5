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
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func terminal(t *testing.T, job, typ, id string) event.Event {
	t.Helper()
	e, err := events.New(nil, id, typ, "/test", 0, job, map[string]string{"job_id": job})
	if err != nil {
		t.Fatal(err)
	}
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
				got, err := scratch.Conclude(ctx, s, job, e)
				if err != nil {
					t.Fatalf("Conclude #%d: %v", i+1, err)
				}
				if got != tc.want[i] {
					t.Errorf("Conclude #%d (%s) = %v, want %v", i+1, e.ID(), got, tc.want[i])
				}
			}
			o, ok, err := scratch.GetOutcome(ctx, s, job)
			if err != nil || !ok {
				t.Fatalf("GetOutcome = %v, %v", ok, err)
			}
			if o.Status != tc.wantStatus || o.EventID != tc.wantID {
				t.Errorf("outcome = %s/%s, want %s/%s", o.Status, o.EventID, tc.wantStatus, tc.wantID)
			}
			var stored event.Event
			if err := json.Unmarshal(o.Event, &stored); err != nil {
				t.Fatalf("stored event: %v", err)
			}
			if stored.ID() != tc.wantID {
				t.Errorf("stored event id = %s, want %s", stored.ID(), tc.wantID)
			}
		})
	}
}

func TestConclude_jobs_are_independent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, job := range []string{"a", "b"} {
		emit, err := scratch.Conclude(ctx, s, job, terminal(t, job, events.TypeJobCompleted, events.CompletedID(job)))
		if err != nil || !emit {
			t.Errorf("Conclude(%s) = %v, %v; want true", job, emit, err)
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
		wg.Go(func() { emits[i], errs[i] = scratch.Conclude(ctx, s, job, e) })
	}
	wg.Wait()
	won := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Conclude #%d: %v", i, errs[i])
		}
		if emits[i] {
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent terminal events were emitted, want exactly 1", won)
	}
}

func TestEnd(t *testing.T) {
	ctx := context.Background()
	const job = "job-e"
	completed := terminal(t, job, events.TypeJobCompleted, events.CompletedID(job))
	failed := terminal(t, job, events.TypeJobFailed, events.FailedID(job))
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
			got, err := scratch.End(ctx, s, job, tc.e)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantID == "" && got != nil:
				t.Errorf("End = %s, want nil", got.ID())
			case tc.wantID != "" && (got == nil || got.ID() != tc.wantID):
				t.Errorf("End = %v, want %s", got, tc.wantID)
			}
		})
	}
	t.Run("store_error_is_transient", func(t *testing.T) {
		broken := failingStore{Store: newStore(t), err: errors.New("disk on fire")}
		got, err := scratch.End(ctx, broken, job, completed)
		if got != nil || err == nil || !failure.Retryable(err) {
			t.Fatalf("End = %v, %v; want nil and a transient error", got, err)
		}
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
		if err := s.Put(ctx, key, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("only_json_records_count", func(t *testing.T) {
		s := newStore(t)
		for _, r := range []scratch.PageRecord{
			{Page: 1, Status: events.PageOK, Route: events.RouteOCR, MarkdownKey: scratch.PageKey(job, 1, "md")},
			{Page: 3, Status: events.PageFailed, Route: events.RouteText, Reason: "transient: x"},
		} {
			if err := scratch.PutJSON(ctx, s, scratch.PageKey(job, r.Page, "json"), r); err != nil {
				t.Fatal(err)
			}
		}
		put(t, s, scratch.PageKey(job, 1, "md"), "# page one")
		put(t, s, scratch.PageKey(job, 2, "md"), "# page two, not done")
		put(t, s, scratch.PageKey(job, 2, "raw"), "{not json")
		put(t, s, scratch.PageKey(job, 2, "jpg"), "\xff\xd8")
		put(t, s, scratch.PageKey("other", 5, "json"), `{"page":5}`)
		recs, err := scratch.Records(ctx, s, job)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[1].Status != events.PageOK || recs[3].Status != events.PageFailed {
			t.Errorf("Records = %+v, want pages 1 (ok) and 3 (failed) only", recs)
		}
	})
	t.Run("empty_job", func(t *testing.T) {
		recs, err := scratch.Records(ctx, newStore(t), job)
		if err != nil || len(recs) != 0 {
			t.Errorf("Records = %v, %v; want empty", recs, err)
		}
	})
	t.Run("corrupt_record_is_an_error", func(t *testing.T) {
		s := newStore(t)
		put(t, s, scratch.PageKey(job, 1, "json"), "{truncated")
		if _, err := scratch.Records(ctx, s, job); err == nil {
			t.Error("Records with a corrupt record succeeded")
		}
	})
}

func TestGetRecord(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	want := scratch.PageRecord{Page: 2, Status: events.PageOK, Route: events.RouteOCR, Engine: "fake", EventID: "e"}
	if err := scratch.PutJSON(ctx, s, scratch.PageKey("j", 2, "json"), want); err != nil {
		t.Fatal(err)
	}
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
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.wantOK || (ok && got != want) {
				t.Errorf("GetRecord = %+v, %v; want %+v, %v", got, ok, want, tc.wantOK)
			}
		})
	}
}

func TestGetJSON_missing_is_ErrNotFound(t *testing.T) {
	var v map[string]any
	err := scratch.GetJSON(context.Background(), newStore(t), "jobs/x/manifest.json", &v)
	if !errors.Is(err, scratch.ErrNotFound) {
		t.Fatalf("GetJSON err = %v, want scratch.ErrNotFound", err)
	}
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
			if !scratch.ValidKey(tc.key) {
				t.Errorf("%q is not a valid blob key", tc.key)
			}
		})
	}
	t.Run("dead_letters_stay_under_deadletters", func(t *testing.T) {
		for _, id := range []string{"x", "../x", "a/../../b", "..\\..\\c"} {
			k := scratch.DeadLetterKey(id)
			if !strings.HasPrefix(k, "deadletters/") || strings.Count(k, "/") != 1 {
				t.Errorf("DeadLetterKey(%q) = %q escapes deadletters/", id, k)
			}
		}
	})
}

func TestRecognizedEvent(t *testing.T) {
	parent := terminal(t, "j", events.TypePageRendered, "parent")
	parent.SetExtension(events.ExtTraceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	rec := scratch.PageRecord{Page: 4, Status: events.PageFailed, Route: events.RouteOCR, Reason: "transient: gone"}
	e, err := scratch.RecognizedEvent(&parent, "/src", "j", 6, rec)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != events.PageRecognizedID("j", 4) || e.Type() != events.TypePageRecognized || e.Source() != "/src" {
		t.Errorf("event = %s/%s/%s", e.ID(), e.Type(), e.Source())
	}
	if e.Extensions()[events.ExtTraceparent] != parent.Extensions()[events.ExtTraceparent] {
		t.Error("traceparent not carried over")
	}
	var p events.PageRecognized
	if err := events.Decode(*e, &p); err != nil {
		t.Fatal(err)
	}
	if p.JobID != "j" || p.Page != 4 || p.Pages != 6 || p.Status != events.PageFailed || p.Reason != rec.Reason {
		t.Errorf("payload = %+v", p)
	}
}
