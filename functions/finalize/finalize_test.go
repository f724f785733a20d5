package finalize_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/finalize"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// recipe is the recipe every test finalizer keys results with.
var recipe = content.Recipe{PipelineVersion: content.PipelineVersion, Engine: "vllm", Model: "model-x", Mode: "base"}

// storer records the results finalize stores. Its n-th call returns
// errs[n-1] while there is one, and succeeds after.
type storer struct {
	// gate, when set, holds every Store until it is closed.
	gate    chan struct{}
	mu      sync.Mutex
	errs    []error
	results []content.Result
}

func (s *storer) Store(_ context.Context, r content.Result) (string, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return "", err
	}
	s.results = append(s.results, r)
	return "derived-" + r.JobID, nil
}

func (s *storer) stored() []content.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]content.Result(nil), s.results...)
}

// recordingStorer is a storer that also records failures
// (content.FailureRecorder).
type recordingStorer struct {
	*storer
	failures []content.Failure
}

var _ content.FailureRecorder = (*recordingStorer)(nil)

func (r *recordingStorer) RecordFailure(_ context.Context, f content.Failure) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, f)
	return nil
}

// job is the finalize test's job: its manifest and scratch store.
type job struct {
	id    string
	m     scratch.Manifest
	store *blob.Memory
}

// newJob writes the manifest of a job over pages on a memory store.
func newJob(t *testing.T, id string, pages []int, edit ...func(*scratch.Manifest)) job {
	t.Helper()
	m := scratch.Manifest{
		JobID: id, ContentID: "content-" + id, TenantID: "tenant", OwnerID: "owner", SourceName: id + ".pdf",
		SourceFormat: "pdf", TotalPages: len(pages), Pages: pages, StartedAt: time.Now().Add(-time.Second).UTC(),
		Hints: map[string]string{},
	}
	for _, f := range edit {
		f(&m)
	}
	j := job{id: id, m: m, store: blob.NewMemory()}
	require.NoError(t, scratch.CreateJSON(t.Context(), j.store, scratch.ManifestKey(id), m))
	return j
}

// page is a finished page to write.
type page struct {
	n      int
	status events.PageStatus
	route  events.Route
	engine string
	md     string
	reason string
}

func okPage(n int, md string) page {
	return page{n: n, status: events.PageOK, route: events.RouteOCR, engine: "vllm", md: md}
}

func failedPage(n int, reason string) page {
	return page{n: n, status: events.PageFailed, route: events.RouteOCR, engine: "vllm", reason: reason}
}

// finish writes page p's markdown and record and returns the event that
// reports it.
func (j job) finish(t *testing.T, p page) event.Event {
	t.Helper()
	ctx := t.Context()
	rec := scratch.PageRecord{Page: p.n, Status: p.status, Route: p.route, Engine: p.engine, Reason: p.reason,
		EventID: events.PageRenderedID(j.id, p.n)}
	if p.status == events.PageOK {
		rec.MarkdownKey = scratch.PageKey(j.id, p.n, "md")
		require.NoError(t, j.store.Put(ctx, rec.MarkdownKey, strings.NewReader(p.md)))
	}
	require.NoError(t, scratch.PutJSON(ctx, j.store, scratch.PageKey(j.id, p.n, "json"), rec))
	return j.event(t, rec)
}

// event is the ocr.page.recognized that reports rec.
func (j job) event(t *testing.T, rec scratch.PageRecord) event.Event {
	t.Helper()
	e, err := scratch.RecognizedEvent(nil, "/recognize", j.id, len(j.m.Pages), rec)
	require.NoError(t, err)
	return *e
}

func newFinalizer(j job, st finalize.Storer) *finalize.Finalizer {
	return finalize.New(finalize.Config{Recipe: recipe, MaxPageErrorRate: 1}, j.store, st, slog.New(slog.DiscardHandler))
}

// completed decodes an ocr.job.completed reply.
func completed(t *testing.T, reply *event.Event) events.JobCompleted {
	t.Helper()
	require.NotNil(t, reply, "want ocr.job.completed, got no reply")
	require.Equal(t, events.TypeJobCompleted, reply.Type())
	var jc events.JobCompleted
	require.NoError(t, events.Decode(*reply, &jc))
	return jc
}

// exists reports whether key is in the job's scratch store.
func (j job) exists(t *testing.T, key string) bool {
	t.Helper()
	ok, err := j.store.Exists(t.Context(), key)
	require.NoError(t, err)
	return ok
}

// TestFinalize_reports_progress_while_pages_are_missing: until every page
// of the job's page list has a record, each page event replies
// ocr.job.progress with the count of finished pages, and nothing is
// assembled or stored.
func TestFinalize_reports_progress_while_pages_are_missing(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pages, done []int
		wantDone    int
		wantPercent int
	}{
		{name: "first_page_of_four", pages: []int{1, 2, 3, 4}, done: []int{1}, wantDone: 1, wantPercent: 25},
		{name: "all_but_one_of_four", pages: []int{1, 2, 3, 4}, done: []int{1, 2, 4}, wantDone: 3, wantPercent: 75},
		{name: "records_outside_the_page_range_do_not_count", pages: []int{2, 3, 5}, done: []int{1, 2, 4}, wantDone: 1, wantPercent: 33},
		{name: "failed_pages_count_as_done", pages: []int{1, 2, 3}, done: []int{-1, -2}, wantDone: 2, wantPercent: 66},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(t, "job-progress", tc.pages)
			var last event.Event
			for _, n := range tc.done {
				if n < 0 {
					last = j.finish(t, failedPage(-n, "permanent: unreadable"))
				} else {
					last = j.finish(t, okPage(n, "text"))
				}
			}
			st := &storer{}
			reply, err := newFinalizer(j, st).Handle(t.Context(), last)
			require.NoError(t, err)
			require.NotNil(t, reply)
			assert.Equal(t, events.TypeJobProgress, reply.Type())
			assert.Equal(t, events.ProgressID(j.id, tc.wantDone), reply.ID())
			assert.Equal(t, finalize.Source, reply.Source())
			var p events.JobProgress
			require.NoError(t, events.Decode(*reply, &p))
			assert.Equal(t, events.JobProgress{JobID: j.id, PagesCompleted: tc.wantDone, TotalPages: len(tc.pages), Percent: tc.wantPercent, Seq: tc.wantDone}, p)
			assert.Empty(t, st.stored(), "nothing is stored while pages are missing")
			assert.False(t, j.exists(t, scratch.LockKey(j.id)), "no lock while pages are missing")
			assert.False(t, j.exists(t, scratch.ResultKey(j.id)))
		})
	}
}

// TestFinalize_exactly_one_delivery_assembles_the_job: once every page is
// done, the page events that see it race for the lock; one stores the
// result and replies ocr.job.completed, the others reply nothing.
func TestFinalize_exactly_one_delivery_assembles_the_job(t *testing.T) {
	t.Run("serial", func(t *testing.T) {
		j := newJob(t, "job-serial", []int{1, 2, 3})
		evs := []event.Event{j.finish(t, okPage(1, "a")), j.finish(t, okPage(2, "b")), j.finish(t, okPage(3, "c"))}
		st := &storer{}
		fz := newFinalizer(j, st)

		first, err := fz.Handle(t.Context(), evs[2])
		require.NoError(t, err)
		jc := completed(t, first)
		assert.Equal(t, events.CompletedID(j.id), first.ID())
		assert.Equal(t, "derived-"+j.id, jc.DerivedContentID)

		for _, e := range []event.Event{evs[1], evs[0]} {
			reply, err := fz.Handle(t.Context(), e)
			require.NoError(t, err, "event %s", e.ID())
			assert.Nil(t, reply, "event %s after the job completed", e.ID())
		}
		// The winner's own redelivery repeats its reply (same id, for
		// brokers to dedupe: the first reply may have been lost between
		// the outcome and its publication) but never stores again.
		again, err := fz.Handle(t.Context(), evs[2])
		require.NoError(t, err)
		require.NotNil(t, again, "the deciding event's redelivery replies the terminal event again")
		assert.Equal(t, first.ID(), again.ID())
		assert.Len(t, st.stored(), 1, "the result is stored once")
	})
	t.Run("concurrent", func(t *testing.T) {
		const pages = 8
		var list []int
		for n := 1; n <= pages; n++ {
			list = append(list, n)
		}
		j := newJob(t, "job-concurrent", list)
		var evs []event.Event
		for _, n := range list {
			evs = append(evs, j.finish(t, okPage(n, "page "+strconv.Itoa(n))))
		}
		// The winner is held inside Store until every other delivery has
		// replied: they all see every page done and no outcome yet, so only
		// the lock keeps them from storing too.
		st := &storer{gate: make(chan struct{})}
		fz := newFinalizer(j, st)

		type result struct {
			reply *event.Event
			err   error
		}
		results := make(chan result, pages)
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, e := range evs {
			wg.Go(func() {
				reply, err := fz.Handle(t.Context(), e)
				results <- result{reply, err}
			})
		}
		open := sync.OnceFunc(func() { close(st.gate) })
		timeout := time.After(10 * time.Second)
		var winner *event.Event
		for i := 0; i < pages; i++ {
			if i == pages-1 {
				open() // every loser has replied: let the winner finish
			}
			select {
			case r := <-results:
				require.NoError(t, r.err)
				if r.reply != nil {
					assert.Nil(t, winner, "a second delivery replied %s", r.reply.ID())
					winner = r.reply
				}
			case <-timeout:
				open()
				require.FailNow(t, "deliveries are still running: more than one is storing the result")
			}
		}
		completed(t, winner)
		assert.Len(t, st.stored(), 1, "the result is stored once")
		o, ended, err := scratch.GetOutcome(t.Context(), j.store, j.id)
		require.NoError(t, err)
		require.True(t, ended)
		assert.Equal(t, "completed", o.Status)
		assert.Equal(t, winner.ID(), o.EventID)
	})
	t.Run("lock_held_by_another_event_replies_nothing", func(t *testing.T) {
		// The winner may still be storing (or may have crashed, and its
		// redelivery will resume): a page event that finds the lock taken by
		// another event neither stores nor replies.
		j := newJob(t, "job-locked", []int{1, 2})
		j.finish(t, okPage(1, "a"))
		last := j.finish(t, okPage(2, "b"))
		require.NoError(t, j.store.Create(t.Context(), scratch.LockKey(j.id), strings.NewReader("another-event")))
		st := &storer{}

		reply, err := newFinalizer(j, st).Handle(t.Context(), last)
		require.NoError(t, err)
		assert.Nil(t, reply)
		assert.Empty(t, st.stored())
	})
	t.Run("lock_holders_redelivery_resumes", func(t *testing.T) {
		j := newJob(t, "job-resume", []int{1, 2})
		j.finish(t, okPage(1, "a"))
		last := j.finish(t, okPage(2, "b"))
		require.NoError(t, j.store.Create(t.Context(), scratch.LockKey(j.id), strings.NewReader(last.ID())))
		st := &storer{}

		reply, err := newFinalizer(j, st).Handle(t.Context(), last)
		require.NoError(t, err)
		completed(t, reply)
		assert.Len(t, st.stored(), 1)
	})
}

// TestFinalize_result_has_pages_in_order_and_placeholders_for_failed_pages:
// the assembled document holds every page in page order (whatever order
// the records arrived in), separated by finalize.Separator; a failed page
// is finalize.Placeholder and is listed, with its reason, in failed_pages.
func TestFinalize_result_has_pages_in_order_and_placeholders_for_failed_pages(t *testing.T) {
	ctx := t.Context()
	const reason = "permanent: the model gave up --> page 2"
	j := newJob(t, "job-assemble", []int{1, 2, 3, 4}, func(m *scratch.Manifest) { m.Hints["resolution"] = "tiny" })
	var last event.Event
	for _, p := range []page{
		{n: 4, status: events.PageOK, route: events.RouteOCR, engine: "tesseract", md: "four"},
		{n: 3, status: events.PageOK, route: events.RouteText, engine: "text-layer", md: "three\n\n"},
		failedPage(2, reason),
		okPage(1, "  # One\n\nfirst page  \n"),
	} {
		last = j.finish(t, p)
	}
	st := &storer{}

	reply, err := newFinalizer(j, st).Handle(ctx, last)
	require.NoError(t, err)
	jc := completed(t, reply)

	want := "<!-- page 1 -->\n\n# One\n\nfirst page\n" + finalize.Separator +
		"<!-- page 2 -->\n\n" + finalize.Placeholder(2, reason) + finalize.Separator +
		"<!-- page 3 -->\n\nthree\n" + finalize.Separator +
		"<!-- page 4 -->\n\nfour\n"
	stored := st.stored()
	require.Len(t, stored, 1)
	assert.Equal(t, want, string(stored[0].Markdown))
	result, err := scratch.GetBytes(ctx, j.store, scratch.ResultKey(j.id))
	require.NoError(t, err)
	assert.Equal(t, want, string(result), "the scratch copy is the stored document")

	r := stored[0]
	assert.Equal(t, j.id, r.JobID)
	assert.Equal(t, j.m.ContentID, r.ContentID)
	assert.Equal(t, j.m.SourceName, r.SourceName)
	assert.Equal(t, recipe.Key(j.m.ContentID, "tiny"), r.IdempotencyKey)
	assert.Equal(t, "tiny", r.Metadata["mode"], "the job's mode hint wins")
	assert.Equal(t, recipe.Engine, r.Metadata["engine"])
	assert.Equal(t, recipe.Model, r.Metadata["model"])
	assert.Equal(t, 4, r.Metadata["page_count"])

	assert.Equal(t, j.id, jc.JobID)
	assert.Equal(t, j.m.ContentID, jc.ContentID)
	assert.Equal(t, 4, jc.PageCount)
	assert.Equal(t, []events.FailedPage{{Page: 2, Route: events.RouteOCR, Reason: reason}}, jc.FailedPages, "a failed page names its route")
	assert.Equal(t, map[string]int{"gpu": 2, "text": 1}, jc.PagesByRoute)
	assert.Equal(t, map[string]string{"1": "vllm", "2": "vllm", "3": "text-layer", "4": "tesseract"}, jc.EngineUsed)
	assert.Positive(t, jc.ProcessingTimeMS, "processing time runs from the manifest's started_at")
}

// TestPlaceholder_names_the_page_and_keeps_the_reason_in_its_comment: a
// reason holding "-->" cannot close the placeholder's HTML comment early.
func TestPlaceholder_names_the_page_and_keeps_the_reason_in_its_comment(t *testing.T) {
	got := finalize.Placeholder(7, "permanent: a --> b")
	assert.Contains(t, got, "page 7 could not be recognized")
	assert.Contains(t, got, "ocrflow:failed-page 7 reason: permanent: a -> b -->")
	assert.Equal(t, 1, strings.Count(got, "-->"), "only the comment's own end: %q", got)
}

// TestFinalize_office_pictures_are_placed_inside_their_page: a picture
// page of an office document (manifest.Inline) is written inside the page
// that shows it, after its "<!-- image: NAME -->" placeholder (folded
// onto its row in a table cell), or at the end of the page without one;
// it is not a page of its own.
func TestFinalize_office_pictures_are_placed_inside_their_page(t *testing.T) {
	for _, tc := range []struct {
		name     string
		host     string
		picture  page
		wantHost string
	}{
		{
			name:     "placeholder_in_a_paragraph",
			host:     "# Figures\n\n<!-- image: chart.png -->\n\nAfter.",
			picture:  okPage(2, "Q1 100\nQ2 112\n"),
			wantHost: "# Figures\n\n<!-- image: chart.png -->\n\nQ1 100\nQ2 112\n\nAfter.\n",
		},
		{
			name:     "placeholder_in_a_table_cell",
			host:     "| Name | Chart |\n| --- | --- |\n| Acme | <!-- image: chart.png --> |",
			picture:  okPage(2, "Q1 | 100\nQ2 | 112"),
			wantHost: "| Name | Chart |\n| --- | --- |\n| Acme | <!-- image: chart.png --> Q1 \\| 100<br>Q2 \\| 112 |\n",
		},
		{
			name:     "no_placeholder_appends_the_picture",
			host:     "Text only.",
			picture:  okPage(2, "Q1 100"),
			wantHost: "Text only.\n\n<!-- image: chart.png -->\n\nQ1 100\n",
		},
		{
			name:     "failed_picture_leaves_its_placeholder_in_the_page",
			host:     "<!-- image: chart.png -->",
			picture:  failedPage(2, "permanent: blurred"),
			wantHost: "<!-- image: chart.png -->\n\n" + strings.TrimSpace(finalize.Placeholder(2, "permanent: blurred")) + "\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(t, "job-inline", []int{1, 2, 3}, func(m *scratch.Manifest) {
				m.Inline = map[int]scratch.Inline{2: {Page: 1, Name: "chart.png"}}
			})
			j.finish(t, page{n: 1, status: events.PageOK, route: events.RouteText, engine: "text-layer", md: tc.host})
			j.finish(t, tc.picture)
			last := j.finish(t, page{n: 3, status: events.PageOK, route: events.RouteText, engine: "text-layer", md: "End."})
			st := &storer{}

			reply, err := newFinalizer(j, st).Handle(t.Context(), last)
			require.NoError(t, err)
			jc := completed(t, reply)
			want := "<!-- page 1 -->\n\n" + tc.wantHost + finalize.Separator + "<!-- page 3 -->\n\nEnd.\n"
			stored := st.stored()
			require.Len(t, stored, 1)
			assert.Equal(t, want, string(stored[0].Markdown))
			assert.NotContains(t, string(stored[0].Markdown), "<!-- page 2 -->", "a placed picture is not a page of its own")
			assert.Equal(t, 3, jc.PageCount, "the picture still counts as a page of the job")
		})
	}
}

// errStore is a content store's failure.
var errStore = errors.New("content store unavailable")

// TestFinalize_store_failure: a transient storer error is returned for a
// retry, ends nothing, and the redelivered winning event completes the job;
// a permanent one fails the job and leaves the content store's trace.
func TestFinalize_store_failure(t *testing.T) {
	t.Run("transient_error_is_returned_and_the_redelivery_completes", func(t *testing.T) {
		ctx := t.Context()
		j := newJob(t, "job-store-transient", []int{1, 2})
		j.finish(t, okPage(1, "a"))
		last := j.finish(t, okPage(2, "b"))
		st := &storer{errs: []error{errStore}}
		fz := newFinalizer(j, st)

		reply, err := fz.Handle(ctx, last)
		require.Error(t, err)
		assert.ErrorIs(t, err, errStore)
		assert.True(t, failure.Retryable(err), "a store failure must be retried: %v", err)
		assert.Nil(t, reply)
		_, ended, err := scratch.GetOutcome(ctx, j.store, j.id)
		require.NoError(t, err)
		assert.False(t, ended, "a transient failure ends nothing")

		reply, err = fz.Handle(ctx, last)
		require.NoError(t, err)
		completed(t, reply)
		assert.Len(t, st.stored(), 1)
	})
	t.Run("permanent_error_fails_the_job_with_a_trace", func(t *testing.T) {
		ctx := t.Context()
		j := newJob(t, "job-store-permanent", []int{1})
		last := j.finish(t, okPage(1, "a"))
		st := &recordingStorer{storer: &storer{errs: []error{failure.Permanent("quota exceeded")}}}

		reply, err := newFinalizer(j, st).Handle(ctx, last)
		require.NoError(t, err)
		require.NotNil(t, reply)
		assert.Equal(t, events.TypeJobFailed, reply.Type())
		assert.Equal(t, events.FailedID(j.id), reply.ID())
		var jf events.JobFailed
		require.NoError(t, events.Decode(*reply, &jf))
		assert.Equal(t, "permanent", jf.ErrorType)
		assert.Contains(t, jf.Message, "quota exceeded")
		require.Len(t, st.failures, 1)
		assert.Equal(t, content.Failure{
			JobID: j.id, ContentID: j.m.ContentID, TenantID: j.m.TenantID, OwnerID: j.m.OwnerID,
			IdempotencyKey: recipe.Key(j.m.ContentID, ""), ErrorType: "permanent", Message: jf.Message,
		}, st.failures[0])
		o, ended, err := scratch.GetOutcome(ctx, j.store, j.id)
		require.NoError(t, err)
		require.True(t, ended)
		assert.Equal(t, "failed", o.Status)
	})
}

// TestFinalize_ended_or_unknown_jobs: events for a job that already has an
// outcome reply nothing; a job without a manifest fails; an event that
// cannot be read is a permanent error.
func TestFinalize_ended_or_unknown_jobs(t *testing.T) {
	t.Run("job_with_an_outcome_replies_nothing", func(t *testing.T) {
		ctx := t.Context()
		j := newJob(t, "job-ended", []int{1})
		last := j.finish(t, okPage(1, "a"))
		failed, err := events.Failed(nil, "/x", j.id, "", "validation", "gone", 0)
		require.NoError(t, err)
		emit, err := scratch.Conclude(ctx, j.store, j.id, "another-event", failed)
		require.NoError(t, err)
		require.True(t, emit)
		st := &storer{}

		reply, err := newFinalizer(j, st).Handle(ctx, last)
		require.NoError(t, err)
		assert.Nil(t, reply)
		assert.Empty(t, st.stored())
		assert.False(t, j.exists(t, scratch.LockKey(j.id)), "an ended job is not locked")
	})
	t.Run("job_without_manifest_fails_permanently", func(t *testing.T) {
		ctx := t.Context()
		j := job{id: "job-no-manifest", store: blob.NewMemory(), m: scratch.Manifest{Pages: []int{1}}}
		last := j.finish(t, okPage(1, "a"))
		st := &recordingStorer{storer: &storer{}}

		reply, err := newFinalizer(j, st).Handle(ctx, last)
		require.NoError(t, err)
		require.NotNil(t, reply)
		assert.Equal(t, events.TypeJobFailed, reply.Type())
		var jf events.JobFailed
		require.NoError(t, events.Decode(*reply, &jf))
		assert.Equal(t, "permanent", jf.ErrorType)
		assert.Contains(t, jf.Message, "no manifest")
		assert.Empty(t, st.failures, "without a manifest there is no source to attach a trace to")
	})
	t.Run("undecodable_event_is_a_permanent_error", func(t *testing.T) {
		j := newJob(t, "job-bad-event", []int{1})
		e := j.event(t, scratch.PageRecord{Page: 1, Status: events.PageOK})
		e.DataEncoded = []byte("{not json")
		reply, err := newFinalizer(j, &storer{}).Handle(t.Context(), e)
		assert.Nil(t, reply)
		require.Error(t, err)
		assert.ErrorIs(t, err, failure.ErrPermanent)
	})
}

// TestFinalize_progress_ids_are_per_count: two deliveries that see the same
// count reply the same progress id (brokers dedupe), a later count a new one.
func TestFinalize_progress_ids_are_per_count(t *testing.T) {
	j := newJob(t, "job-progress-ids", []int{1, 2, 3})
	fz := newFinalizer(j, &storer{})
	var ids []string
	deliver := func(e event.Event) {
		t.Helper()
		reply, err := fz.Handle(t.Context(), e)
		require.NoError(t, err)
		require.NotNil(t, reply)
		ids = append(ids, reply.ID())
	}
	e1 := j.finish(t, okPage(1, "a"))
	deliver(e1)
	deliver(e1)
	deliver(j.finish(t, okPage(2, "b")))
	assert.Equal(t, []string{events.ProgressID(j.id, 1), events.ProgressID(j.id, 1), events.ProgressID(j.id, 2)}, ids)
}
