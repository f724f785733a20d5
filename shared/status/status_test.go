package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/status"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

const (
	jobID   = "job-1"
	content = "11111111-0000-4000-8000-000000000001"
	tenant  = "aaaaaaaa-0000-4000-8000-000000000001"
	owner   = "aaaaaaaa-0000-4000-8000-0000000000a1"
)

// t0 is when every scenario's job was submitted; it starts a second later.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sec(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }

// state builds a job's scratch state step by step.
type state struct {
	t   *testing.T
	s   *blob.Memory
	job string
}

func (st state) submitted(hints map[string]string) state {
	st.t.Helper()
	e, err := job.NewEvent(job.Spec{ID: st.job, ContentID: content, TenantID: tenant, OwnerID: owner, Name: "report.pdf", Hints: hints})
	require.NoError(st.t, err)
	b, err := e.MarshalJSON()
	require.NoError(st.t, err)
	require.NoError(st.t, scratch.CreateJSON(st.t.Context(), st.s, scratch.SubmittedKey(st.job),
		scratch.Submitted{SubmittedAt: t0, By: "test", Job: b}))
	return st
}

func (st state) manifest(pages int, hints map[string]string) state {
	st.t.Helper()
	m := scratch.Manifest{
		JobID: st.job, ContentID: content, TenantID: tenant, SourceName: "report.pdf", SourceFormat: "pdf",
		TotalPages: pages, Hints: hints, StartedAt: sec(1),
	}
	for n := 1; n <= pages; n++ {
		m.Pages = append(m.Pages, n)
	}
	require.NoError(st.t, scratch.PutJSON(st.t.Context(), st.s, scratch.ManifestKey(st.job), m))
	return st
}

// rendered puts page images (ext jpg) or text-layer markdown (text.md).
func (st state) rendered(ext string, pages ...int) state {
	st.t.Helper()
	for _, n := range pages {
		require.NoError(st.t, st.s.Put(st.t.Context(), scratch.PageKey(st.job, n, ext), strings.NewReader("x")))
	}
	return st
}

func (st state) done(recs ...scratch.PageRecord) state {
	st.t.Helper()
	for _, r := range recs {
		require.NoError(st.t, scratch.PutRecord(st.t.Context(), st.s, st.job, r))
	}
	return st
}

func (st state) locked() state {
	st.t.Helper()
	require.NoError(st.t, st.s.Create(st.t.Context(), scratch.LockKey(st.job), strings.NewReader("x")))
	return st
}

func (st state) ended(typ string, at time.Time, payload any) state {
	st.t.Helper()
	id := events.CompletedID(st.job)
	if typ == events.TypeJobFailed {
		id = events.FailedID(st.job)
	}
	e, err := events.New(nil, id, typ, "/test", 0, st.job, payload)
	require.NoError(st.t, err)
	e.SetTime(at)
	emit, err := scratch.Conclude(st.t.Context(), st.s, st.job, "cause", e)
	require.NoError(st.t, err)
	require.True(st.t, emit, "outcome of %s already set", st.job)
	return st
}

func (st state) replayedAs(as string) state {
	st.t.Helper()
	require.NoError(st.t, scratch.PutJSON(st.t.Context(), st.s, scratch.ReplayedKey(st.job), scratch.Replayed{At: sec(100), As: as}))
	return st
}

func gpu(n int, at float64) scratch.PageRecord {
	return scratch.PageRecord{Page: n, Status: events.PageOK, Route: events.RouteOCR, Engine: "vllm", MarkdownKey: "k", DoneAt: sec(at)}
}

func text(n int, at float64) scratch.PageRecord {
	return scratch.PageRecord{Page: n, Status: events.PageOK, Route: events.RouteText, MarkdownKey: "k", DoneAt: sec(at)}
}

func fallback(n int, at float64) scratch.PageRecord {
	r := gpu(n, at)
	r.Engine, r.Fallback = "tesseract", true
	return r
}

func failed(n int, at float64, reason string) scratch.PageRecord {
	return scratch.PageRecord{Page: n, Status: events.PageFailed, Route: events.RouteOCR, Reason: reason, DoneAt: sec(at)}
}

func ptr[T any](v T) *T { return &v }

func routes(text, gpu, fallback int) map[string]int {
	return map[string]int{status.RouteText: text, status.RouteGPU: gpu, status.RouteFallback: fallback}
}

func TestRead(t *testing.T) {
	const reason = "transient: retries exhausted (last status 503 at ocrflow://ocrflow-recognize): engine down"
	for _, tc := range []struct {
		name  string
		build func(st state)
		now   time.Time
		want  status.Job
	}{
		{
			name:  "submitted_only_is_queued",
			build: func(st state) { st.submitted(nil) },
			now:   sec(5),
			want: status.Job{
				State: status.Queued, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf",
				Pages: status.Pages{ByRoute: routes(0, 0, 0)}, SubmittedAt: ptr(t0), UpdatedAt: ptr(t0),
			},
		},
		{
			name:  "manifest_and_some_pages_rendered_is_converting",
			build: func(st state) { st.submitted(nil).manifest(4, nil).rendered("jpg", 1).rendered("text.md", 2) },
			now:   sec(5),
			want: status.Job{
				State: status.Converting, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf", SourceFormat: "pdf",
				Pages:       status.Pages{Total: 4, Rendered: 2, ByRoute: routes(0, 0, 0)},
				SubmittedAt: ptr(t0), StartedAt: ptr(sec(1)), UpdatedAt: ptr(sec(1)),
			},
		},
		{
			name: "every_page_rendered_is_recognizing_with_a_rate_and_an_eta",
			build: func(st state) {
				st.submitted(nil).manifest(4, nil).rendered("jpg", 1, 2, 3).rendered("text.md", 4).done(text(4, 3), gpu(1, 5))
			},
			now: sec(11), // 2 pages in the 10 s since the start: 0.2 pages/s, 2 left
			want: status.Job{
				State: status.Recognizing, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf", SourceFormat: "pdf",
				Pages:       status.Pages{Total: 4, Rendered: 4, Done: 2, ByRoute: routes(1, 1, 0)},
				SubmittedAt: ptr(t0), StartedAt: ptr(sec(1)), UpdatedAt: ptr(sec(5)),
				PagesPerSecond: 0.2, ETASeconds: ptr(10.0),
			},
		},
		{
			name: "every_page_done_is_finalizing",
			build: func(st state) {
				st.submitted(nil).manifest(2, nil).rendered("jpg", 1, 2).done(gpu(1, 2), gpu(2, 3))
			},
			now: sec(5),
			want: status.Job{
				State: status.Finalizing, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf", SourceFormat: "pdf",
				Pages:       status.Pages{Total: 2, Rendered: 2, Done: 2, ByRoute: routes(0, 2, 0)},
				SubmittedAt: ptr(t0), StartedAt: ptr(sec(1)), UpdatedAt: ptr(sec(3)),
				PagesPerSecond: 0.5,
			},
		},
		{
			name: "finalize_lock_is_finalizing",
			build: func(st state) {
				st.submitted(nil).manifest(2, nil).rendered("jpg", 1, 2).done(gpu(1, 2)).locked()
			},
			now: sec(3),
			want: status.Job{
				State: status.Finalizing, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf", SourceFormat: "pdf",
				Pages:       status.Pages{Total: 2, Rendered: 2, Done: 1, ByRoute: routes(0, 1, 0)},
				SubmittedAt: ptr(t0), StartedAt: ptr(sec(1)), UpdatedAt: ptr(sec(2)),
				PagesPerSecond: 0.5, ETASeconds: ptr(2.0),
			},
		},
		{
			name: "completed_with_a_failed_page_and_every_route",
			build: func(st state) {
				st.submitted(nil).manifest(4, nil).rendered("jpg", 1, 2, 4).rendered("text.md", 3).
					done(gpu(1, 2), fallback(2, 3), text(3, 2), failed(4, 4, reason)).locked().
					ended(events.TypeJobCompleted, sec(5), events.JobCompleted{
						JobID: jobID, DerivedContentID: "derived-1", PageCount: 4,
						PagesByRoute: map[string]int{"gpu": 2, "text": 1}, FailedPages: []events.FailedPage{{Page: 4, Reason: reason}},
					})
			},
			now: sec(60), // the rate stops at the finish
			want: status.Job{
				State: status.Completed, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf", SourceFormat: "pdf",
				Pages:       status.Pages{Total: 4, Rendered: 4, Done: 4, Failed: 1, ByRoute: routes(1, 1, 1)},
				FailedPages: []events.FailedPage{{Page: 4, Reason: reason}},
				SubmittedAt: ptr(t0), StartedAt: ptr(sec(1)), UpdatedAt: ptr(sec(5)), FinishedAt: ptr(sec(5)),
				PagesPerSecond: 1, DerivedContentID: "derived-1",
			},
		},
		{
			name: "failed_before_its_pages_were_known",
			build: func(st state) {
				st.submitted(nil).ended(events.TypeJobFailed, sec(8), events.JobFailed{
					JobID: jobID, ErrorType: "transient", Message: "retries exhausted (last status 503 at ocrflow://ocrflow-convert): fetch source: 503",
				})
			},
			now: sec(60),
			want: status.Job{
				State: status.Failed, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf",
				Pages:       status.Pages{ByRoute: routes(0, 0, 0)},
				SubmittedAt: ptr(t0), UpdatedAt: ptr(sec(8)), FinishedAt: ptr(sec(8)),
				ErrorType: "transient", ErrorMessage: "retries exhausted (last status 503 at ocrflow://ocrflow-convert): fetch source: 503",
			},
		},
		{
			name: "outcome_only_takes_the_pages_from_the_completed_event",
			build: func(st state) {
				st.ended(events.TypeJobCompleted, sec(2), events.JobCompleted{
					JobID: jobID, DerivedContentID: "derived-0", PageCount: 3, Reused: true,
					PagesByRoute: map[string]int{"gpu": 2, "text": 1},
				})
			},
			now: sec(60),
			want: status.Job{
				State:      status.Completed,
				Pages:      status.Pages{Total: 3, Rendered: 3, Done: 3, ByRoute: routes(1, 2, 0)},
				UpdatedAt:  ptr(sec(2)),
				FinishedAt: ptr(sec(2)), DerivedContentID: "derived-0", Reused: true,
			},
		},
		{
			name: "replayed_job_names_its_attempt",
			build: func(st state) {
				st.submitted(nil).ended(events.TypeJobFailed, sec(8), events.JobFailed{JobID: jobID, ErrorType: "transient", Message: "down"}).
					replayedAs(jobID + ".r1")
			},
			now: sec(60),
			want: status.Job{
				State: status.Failed, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf",
				Pages:       status.Pages{ByRoute: routes(0, 0, 0)},
				SubmittedAt: ptr(t0), UpdatedAt: ptr(sec(8)), FinishedAt: ptr(sec(8)),
				ErrorType: "transient", ErrorMessage: "down", ReplayedAs: jobID + ".r1",
			},
		},
		{
			name:  "queued_attempt_names_the_job_it_replays",
			build: func(st state) { st.submitted(map[string]string{job.HintReplayOf: "job-0"}) },
			now:   sec(5),
			want: status.Job{
				State: status.Queued, ContentID: content, TenantID: tenant, OwnerID: owner, SourceName: "report.pdf",
				Pages: status.Pages{ByRoute: routes(0, 0, 0)}, SubmittedAt: ptr(t0), UpdatedAt: ptr(t0), ReplayOf: "job-0",
			},
		},
		{
			name:  "converting_attempt_names_the_job_it_replays_from_its_manifest",
			build: func(st state) { st.manifest(2, map[string]string{job.HintReplayOf: "job-0"}) },
			now:   sec(5),
			want: status.Job{
				State: status.Converting, ContentID: content, TenantID: tenant, SourceName: "report.pdf", SourceFormat: "pdf",
				Pages: status.Pages{Total: 2, ByRoute: routes(0, 0, 0)}, StartedAt: ptr(sec(1)), UpdatedAt: ptr(sec(1)), ReplayOf: "job-0",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := blob.NewMemory()
			tc.build(state{t: t, s: s, job: jobID})
			got, err := status.Read(t.Context(), s, jobID, tc.now)
			require.NoError(t, err)
			tc.want.JobID = jobID
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRead_unknown_job(t *testing.T) {
	s := blob.NewMemory()
	// Another job's state is no state of this one.
	state{t: t, s: s, job: "other"}.submitted(nil).manifest(1, nil)
	_, err := status.Read(t.Context(), s, jobID, t0)
	assert.ErrorIs(t, err, status.ErrUnknown)
}

// TestRead_ignores_pages_outside_the_page_list: a pages hint converts a
// subset; objects of other page numbers (and sidecars) do not count.
func TestRead_ignores_pages_outside_the_page_list(t *testing.T) {
	s := blob.NewMemory()
	st := state{t: t, s: s, job: jobID}.manifest(2, nil).rendered("jpg", 1, 2, 7).rendered("raw", 1).done(gpu(1, 2), gpu(7, 2))
	require.NoError(t, s.Put(t.Context(), scratch.PagesPrefix(st.job)+"notes.json", strings.NewReader("{}")))
	got, err := status.Read(t.Context(), s, jobID, sec(3))
	require.NoError(t, err)
	assert.Equal(t, status.Pages{Total: 2, Rendered: 2, Done: 1, ByRoute: routes(0, 1, 0)}, got.Pages)
	assert.Equal(t, status.Recognizing, got.State)
}

// TestRead_lists_failed_pages_in_page_order: keys list as text (10 before
// 2); failed pages come in page order.
func TestRead_lists_failed_pages_in_page_order(t *testing.T) {
	s := blob.NewMemory()
	var all []int
	for n := 1; n <= 10; n++ {
		all = append(all, n)
	}
	state{t: t, s: s, job: jobID}.manifest(10, nil).rendered("jpg", all...).done(failed(10, 2, "b"), failed(2, 3, "a"), gpu(3, 2))
	got, err := status.Read(t.Context(), s, jobID, sec(4))
	require.NoError(t, err)
	assert.Equal(t, []events.FailedPage{{Page: 2, Reason: "a"}, {Page: 10, Reason: "b"}}, got.FailedPages)
	assert.Equal(t, status.Pages{Total: 10, Rendered: 10, Done: 3, Failed: 2, ByRoute: routes(0, 1, 0)}, got.Pages)
}

// TestRead_a_record_that_vanishes_is_not_a_failed_page: a record listed
// but gone when read (the job's scratch state being removed) is not done.
func TestRead_a_record_that_vanishes_is_not_a_failed_page(t *testing.T) {
	s := &vanishing{Memory: blob.NewMemory(), gone: scratch.PageKey(jobID, 2, "json")}
	state{t: t, s: s.Memory, job: jobID}.manifest(2, nil).rendered("jpg", 1, 2).done(gpu(1, 2), gpu(2, 2))
	got, err := status.Read(t.Context(), s, jobID, sec(3))
	require.NoError(t, err)
	assert.Equal(t, status.Pages{Total: 2, Rendered: 2, Done: 1, ByRoute: routes(0, 1, 0)}, got.Pages)
	assert.Empty(t, got.FailedPages)
}

// vanishing lists key gone but answers not found when it is read.
type vanishing struct {
	*blob.Memory
	gone string
}

func (v *vanishing) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if key == v.gone {
		return nil, fmt.Errorf("get %s: %w", key, scratch.ErrNotFound)
	}
	return v.Memory.Get(ctx, key)
}

// TestJob_JSON_names: scripts read these names (ocrflow status --json,
// GET /v1/jobs/{id}).
func TestJob_JSON_names(t *testing.T) {
	j := status.Job{
		JobID: jobID, State: status.Recognizing, Pages: status.Pages{Total: 2, Done: 1, ByRoute: routes(0, 1, 0)},
		ETASeconds: ptr(3.0), PagesPerSecond: 0.5, ReplayOf: "job-0",
	}
	b, err := json.Marshal(j)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"job_id": "job-1", "state": "recognizing",
		"pages": {"total": 2, "rendered": 0, "done": 1, "failed": 0, "by_route": {"text": 0, "gpu": 1, "fallback": 0}},
		"pages_per_second": 0.5, "eta_seconds": 3, "replay_of": "job-0"
	}`, string(b))
}

func TestState_Terminal(t *testing.T) {
	for _, tc := range []struct {
		state status.State
		want  bool
	}{
		{status.Queued, false}, {status.Converting, false}, {status.Recognizing, false}, {status.Finalizing, false},
		{status.Completed, true}, {status.Failed, true},
	} {
		t.Run(string(tc.state), func(t *testing.T) {
			assert.Equal(t, tc.want, tc.state.Terminal())
		})
	}
}
