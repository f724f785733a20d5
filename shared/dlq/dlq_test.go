package dlq_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/dlq"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// jobEvent is the simpleprocess.job of job id.
func jobEvent(t *testing.T, id string, hints map[string]string) event.Event {
	t.Helper()
	e, err := job.NewEvent(job.Spec{ID: id, ContentID: "content-" + id, TenantID: "tenant", Hints: hints})
	require.NoError(t, err)
	return e
}

// pageEvent is page n's ocr.page.rendered of job id.
func pageEvent(t *testing.T, id string, n int) event.Event {
	t.Helper()
	e, err := events.New(nil, events.PageRenderedID(id, n), events.TypePageRendered, "/ocrflow/convert", n, id,
		events.PageRendered{JobID: id, Page: n, Pages: 3, Route: events.RouteOCR, ImageKey: scratch.PageKey(id, n, "jpg")})
	require.NoError(t, err)
	return e
}

// continueEvent is the continuation of job id's event at page index next.
func continueEvent(t *testing.T, id string, next int) event.Event {
	t.Helper()
	orig := jobEvent(t, id, nil)
	raw, err := json.Marshal(orig)
	require.NoError(t, err)
	e, err := events.New(&orig, events.ContinueID(id, next), events.TypeConvertContinue, "/ocrflow/convert", 0, id,
		events.ConvertContinue{JobID: id, Next: next, Job: raw})
	require.NoError(t, err)
	return e
}

// kill keeps e as the deadletter stage keeps what a runtime dead-letters
// (dest is knativeerrordest; "" for none) and returns the dead letter's id.
func kill(t *testing.T, s scratch.Store, e event.Event, dest string, code int, reason string, at time.Time) string {
	t.Helper()
	dead := e.Clone()
	dead.SetExtension(events.ExtErrorCode, int32(code))
	if dest != "" {
		dead.SetExtension(events.ExtErrorDest, dest)
	}
	dead.SetExtension(events.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(reason)))
	rec := scratch.DeadLetter{ReceivedAt: at, Code: code, Dest: dest, Reason: reason, Event: dead}
	key := scratch.DeadLetterKey(dead.ID())
	require.NoError(t, scratch.PutJSON(t.Context(), s, key, rec))
	return strings.TrimSuffix(strings.TrimPrefix(key, scratch.DeadLettersPrefix), ".json")
}

// standaloneID is the id the standalone runtime gives a dead copy of e.
func standaloneID(e event.Event, trigger string) event.Event {
	e = e.Clone()
	e.SetID(e.ID() + "-dead-" + trigger)
	return e
}

func submit(t *testing.T, s scratch.Store, e event.Event) {
	t.Helper()
	require.NoError(t, scratch.Submit(t.Context(), s, e.ID(), "test", e))
}

// sender records what Replay publishes; fail makes every Send fail.
type sender struct {
	mu   sync.Mutex
	sent []event.Event
	fail error
}

func (s *sender) Send(_ context.Context, e event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.sent = append(s.sent, e)
	return nil
}

func TestList(t *testing.T) {
	s := blob.NewMemory()
	job1 := jobEvent(t, "job-1", nil)
	noExt := jobEvent(t, "job-3", nil)
	noExt.SetExtension(events.ExtJob, nil)
	other := event.New()
	other.SetID("upload-9")
	other.SetType("simplecontent.content.uploaded")
	other.SetSource("/simple-content")
	kill(t, s, standaloneID(job1, "ocrflow-convert"), "ocrflow://ocrflow-convert", 503, "fetch source: 503", t0.Add(3*time.Second))
	kill(t, s, pageEvent(t, "job-2", 2), "http://ocrflow-recognize.ocrflow.svc.cluster.local", 500, "engine down", t0.Add(1*time.Second))
	kill(t, s, continueEvent(t, "job-2", 4), "", 503, "no dest", t0.Add(2*time.Second))
	kill(t, s, standaloneID(noExt, "ocrflow-convert"), "http://unknown.example", 503, "x", t0.Add(4*time.Second))
	kill(t, s, other, "", 500, "y", t0.Add(5*time.Second))

	got, err := dlq.List(t.Context(), s, t0.Add(10*time.Second))
	require.NoError(t, err)
	type row struct {
		id, job, stage, typ string
		code                int
		reason              string
		age                 float64
	}
	var rows []row
	for _, e := range got {
		rows = append(rows, row{e.ID, e.Job, e.Stage, e.Type, e.Code, e.Reason, e.AgeSeconds})
	}
	assert.Equal(t, []row{
		// knativeerrordest of a Knative Service names the stage
		{"job-2-p2-rendered", "job-2", "recognize", events.TypePageRendered, 500, "engine down", 9},
		// no dest: the stage the event type routes to
		{"job-2-continue-4", "job-2", "convert", events.TypeConvertContinue, 503, "no dest", 8},
		// the standalone runtime's ocrflow://<service>
		{"job-1-dead-ocrflow-convert", "job-1", "convert", events.TypeJob, 503, "fetch source: 503", 7},
		// no ocrjob extension: the job id from the data; a dest that is no
		// stage: the route
		{"job-3-dead-ocrflow-convert", "job-3", "convert", events.TypeJob, 503, "x", 6},
		// an event of no job that no Trigger routes
		{"upload-9", "", "", "simplecontent.content.uploaded", 500, "y", 5},
	}, rows)
}

func TestGet(t *testing.T) {
	s := blob.NewMemory()
	page := pageEvent(t, "job-1", 3)
	id := kill(t, s, page, "ocrflow://ocrflow-recognize", 503, "engine down", t0)
	for _, tc := range []struct {
		name    string
		id      string
		wantErr error
	}{
		{"by_id", id, nil},
		{"unknown_id", "nope", dlq.ErrNotFound},
		{"path_escape", "../jobs/job-1/outcome", dlq.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := dlq.Get(t.Context(), s, tc.id, t0.Add(time.Minute))
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "job-1", l.Job)
			assert.Equal(t, "recognize", l.Stage)
			assert.Equal(t, "ocrflow://ocrflow-recognize", l.Dest)
			assert.Equal(t, "engine down", l.Reason)
			assert.Equal(t, 60.0, l.AgeSeconds)
			assert.Equal(t, page.ID(), l.Event.ID())
			assert.Equal(t, page.Data(), l.Event.Data())
		})
	}
}

// hintsOf returns a job event's data hints and job_id.
func hintsOf(t *testing.T, e event.Event) (map[string]string, string) {
	t.Helper()
	var d struct {
		JobID string            `json:"job_id"`
		Hints map[string]string `json:"hints"`
	}
	require.NoError(t, json.Unmarshal(e.Data(), &d))
	return d.Hints, d.JobID
}

func TestReplay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, s scratch.Store)
		req   dlq.Request
		// want maps each replayed job to its attempt and where its event
		// came from.
		want     map[string][2]string
		wantHint map[string]map[string]string // attempt → the job's hints it keeps
		// unreplayable dead letters
		wantUnreplayable []string
	}{
		{
			name: "dead_job_with_a_submitted_record",
			build: func(t *testing.T, s scratch.Store) {
				e := jobEvent(t, "job-1", map[string]string{"resolution": "small"})
				submit(t, s, e)
				kill(t, s, standaloneID(e, "ocrflow-convert"), "ocrflow://ocrflow-convert", 503, "fetch", t0)
			},
			req:      dlq.Request{All: true},
			want:     map[string][2]string{"job-1": {"job-1.r1", "submitted"}},
			wantHint: map[string]map[string]string{"job-1.r1": {"resolution": "small"}},
		},
		{
			name: "dead_job_published_straight_to_the_broker",
			build: func(t *testing.T, s scratch.Store) {
				kill(t, s, jobEvent(t, "job-1", nil), "http://ocrflow-convert.ocrflow.svc.cluster.local", 503, "reuse lookup", t0)
			},
			req:  dlq.Request{All: true},
			want: map[string][2]string{"job-1": {"job-1.r1", "dead letter job-1"}},
		},
		{
			name: "dead_continuation_carries_its_job",
			build: func(t *testing.T, s scratch.Store) {
				kill(t, s, continueEvent(t, "job-1", 5), "ocrflow://ocrflow-convert", 503, "fetch", t0)
			},
			req:  dlq.Request{All: true},
			want: map[string][2]string{"job-1": {"job-1.r1", "dead letter job-1-continue-5"}},
		},
		{
			name: "dead_pages_of_one_job_make_one_attempt",
			build: func(t *testing.T, s scratch.Store) {
				submit(t, s, jobEvent(t, "job-1", nil))
				submit(t, s, jobEvent(t, "job-2", nil))
				for _, n := range []int{1, 3} {
					kill(t, s, pageEvent(t, "job-1", n), "ocrflow://ocrflow-recognize", 503, "engine", t0)
				}
				kill(t, s, pageEvent(t, "job-2", 2), "ocrflow://ocrflow-recognize", 503, "engine", t0)
			},
			req:  dlq.Request{All: true},
			want: map[string][2]string{"job-1": {"job-1.r1", "submitted"}, "job-2": {"job-2.r1", "submitted"}},
		},
		{
			name: "named_dead_letter_replays_its_job_only",
			build: func(t *testing.T, s scratch.Store) {
				submit(t, s, jobEvent(t, "job-1", nil))
				submit(t, s, jobEvent(t, "job-2", nil))
				kill(t, s, pageEvent(t, "job-1", 1), "ocrflow://ocrflow-recognize", 503, "engine", t0)
				kill(t, s, pageEvent(t, "job-2", 2), "ocrflow://ocrflow-recognize", 503, "engine", t0)
			},
			req:  dlq.Request{IDs: []string{"job-2-p2-rendered"}},
			want: map[string][2]string{"job-2": {"job-2.r1", "submitted"}},
		},
		{
			name: "attempt_numbers_already_taken_are_skipped",
			build: func(t *testing.T, s scratch.Store) {
				submit(t, s, jobEvent(t, "job-1", nil))
				submit(t, s, jobEvent(t, "job-1.r1", map[string]string{job.HintReplayOf: "job-1"}))
				kill(t, s, pageEvent(t, "job-1", 1), "ocrflow://ocrflow-recognize", 503, "engine", t0)
			},
			req:  dlq.Request{All: true},
			want: map[string][2]string{"job-1": {"job-1.r2", "submitted"}},
		},
		{
			name: "attempt_replayed_again_is_numbered_from_its_job",
			build: func(t *testing.T, s scratch.Store) {
				submit(t, s, jobEvent(t, "job-1", nil))
				submit(t, s, jobEvent(t, "job-1.r1", map[string]string{job.HintReplayOf: "job-1"}))
				kill(t, s, pageEvent(t, "job-1.r1", 2), "ocrflow://ocrflow-recognize", 503, "engine", t0)
			},
			req:  dlq.Request{All: true},
			want: map[string][2]string{"job-1.r1": {"job-1.r2", "submitted"}},
		},
		{
			name: "job_that_cannot_be_rebuilt_is_reported",
			build: func(t *testing.T, s scratch.Store) {
				kill(t, s, pageEvent(t, "job-1", 1), "ocrflow://ocrflow-recognize", 503, "engine", t0)
				other := event.New()
				other.SetID("upload-9")
				other.SetType("simplecontent.content.uploaded")
				other.SetSource("/simple-content")
				kill(t, s, other, "", 500, "y", t0)
			},
			req:              dlq.Request{All: true},
			want:             map[string][2]string{},
			wantUnreplayable: []string{"job-1-p1-rendered", "upload-9"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := blob.NewMemory()
			tc.build(t, s)
			before, err := dlq.List(t.Context(), s, t0)
			require.NoError(t, err)
			send := &sender{}
			rep, err := dlq.Replay(t.Context(), s, send, tc.req)
			require.NoError(t, err)

			var unreplayable []string
			for _, u := range rep.Unreplayable {
				unreplayable = append(unreplayable, u.DeadLetter)
			}
			assert.ElementsMatch(t, tc.wantUnreplayable, unreplayable, "unreplayable: %+v", rep.Unreplayable)
			assert.Equal(t, len(tc.wantUnreplayable) == 0, rep.OK(), "report OK")
			got := map[string][2]string{}
			for _, a := range rep.Attempts {
				got[a.Job] = [2]string{a.As, a.From}
			}
			assert.Equal(t, tc.want, got)
			require.Len(t, send.sent, len(tc.want), "events published")

			for _, e := range send.sent {
				a := e.ID()
				hints, dataID := hintsOf(t, e)
				var replayed string
				for j, w := range tc.want {
					if w[0] == a {
						replayed = j
					}
				}
				require.NotEmpty(t, replayed, "published %s, which is no attempt", a)
				assert.Equal(t, events.TypeJob, e.Type(), "attempt %s", a)
				assert.Equal(t, a, dataID, "attempt %s: data job_id", a)
				assert.Equal(t, a, e.Extensions()[events.ExtJob], "attempt %s: ocrjob", a)
				assert.Equal(t, replayed, hints[job.HintReplayOf], "attempt %s: hints %v", a, hints)
				assert.NotContains(t, hints, "force", "attempt %s: hints %v", a, hints)
				for _, ext := range []string{events.ExtErrorCode, events.ExtErrorDest, events.ExtErrorData} {
					assert.NotContains(t, e.Extensions(), ext, "attempt %s keeps the dead letter's %s", a, ext)
				}
				for k, v := range tc.wantHint[a] {
					assert.Equal(t, v, hints[k], "attempt %s: hint %s", a, k)
				}
				j, err := job.Parse(e)
				assert.NoError(t, err, "attempt %s is not a valid job", a)
				assert.Equal(t, a, j.ID)

				// The attempt is claimed with its submitted record, and the
				// replayed job links to it.
				var sub scratch.Submitted
				require.NoError(t, scratch.GetJSON(t.Context(), s, scratch.SubmittedKey(a), &sub))
				assert.Equal(t, "ocrflow dlq replay", sub.By)
				var rp scratch.Replayed
				require.NoError(t, scratch.GetJSON(t.Context(), s, scratch.ReplayedKey(replayed), &rp))
				assert.Equal(t, a, rp.As)
			}

			// Every dead letter of a replayed job is marked; no other is.
			after, err := dlq.List(t.Context(), s, t0)
			require.NoError(t, err)
			for i, l := range after {
				want := ""
				if w, ok := tc.want[l.Job]; ok && before[i].ReplayedAt == nil {
					want = w[0]
				}
				assert.Equal(t, want, l.ReplayedAs, "dead letter %s", l.ID)
				assert.Equal(t, want != "", l.ReplayedAt != nil, "dead letter %s replayed_at", l.ID)
			}

			// Replaying again publishes nothing.
			again := &sender{}
			rep, err = dlq.Replay(t.Context(), s, again, tc.req)
			require.NoError(t, err)
			assert.Empty(t, rep.Attempts, "second replay")
			assert.Empty(t, again.sent, "second replay")
		})
	}
}

// snapshot returns every object of s.
func snapshot(t *testing.T, s scratch.Store) map[string]string {
	t.Helper()
	keys, err := s.List(t.Context(), "")
	require.NoError(t, err)
	out := map[string]string{}
	for _, k := range keys {
		b, err := scratch.GetBytes(t.Context(), s, k)
		require.NoError(t, err)
		out[k] = string(b)
	}
	return out
}

func TestReplay_dry_run_changes_nothing(t *testing.T) {
	s := blob.NewMemory()
	submit(t, s, jobEvent(t, "job-1", nil))
	submit(t, s, jobEvent(t, "job-1.r1", map[string]string{job.HintReplayOf: "job-1"}))
	kill(t, s, pageEvent(t, "job-1", 1), "ocrflow://ocrflow-recognize", 503, "engine", t0)
	kill(t, s, pageEvent(t, "job-5", 1), "ocrflow://ocrflow-recognize", 503, "engine", t0)
	before := snapshot(t, s)
	send := &sender{}
	rep, err := dlq.Replay(t.Context(), s, send, dlq.Request{All: true, DryRun: true})
	require.NoError(t, err)
	assert.True(t, rep.DryRun)
	require.Len(t, rep.Attempts, 1, "attempts: %+v", rep.Attempts)
	assert.Equal(t, "job-1.r2", rep.Attempts[0].As, "the attempt it would start")
	assert.Equal(t, "job-1.r2", rep.Attempts[0].Event.ID(), "the event it would publish")
	assert.Equal(t, []string{"job-1-p1-rendered"}, rep.Attempts[0].DeadLetters)
	require.Len(t, rep.Unreplayable, 1)
	assert.Equal(t, "job-5-p1-rendered", rep.Unreplayable[0].DeadLetter)
	assert.Empty(t, send.sent, "published")
	assert.Equal(t, before, snapshot(t, s), "the store changed")
}

func TestReplay_publish_failure_leaves_the_dead_letters_unreplayed(t *testing.T) {
	s := blob.NewMemory()
	submit(t, s, jobEvent(t, "job-1", nil))
	kill(t, s, pageEvent(t, "job-1", 1), "ocrflow://ocrflow-recognize", 503, "engine", t0)
	down := &sender{fail: errors.New("broker down")}
	rep, err := dlq.Replay(t.Context(), s, down, dlq.Request{All: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broker down")
	require.Len(t, rep.Attempts, 1)
	assert.Equal(t, "broker down", rep.Attempts[0].Error)
	assert.False(t, rep.OK())
	l, err := dlq.Get(t.Context(), s, "job-1-p1-rendered", t0)
	require.NoError(t, err)
	assert.Nil(t, l.ReplayedAt, "a dead letter whose attempt was not published is marked")

	// Once the broker is back, the next replay goes through (the claimed
	// number stays used).
	up := &sender{}
	rep, err = dlq.Replay(t.Context(), s, up, dlq.Request{All: true})
	require.NoError(t, err)
	require.Len(t, up.sent, 1)
	assert.Equal(t, "job-1.r2", up.sent[0].ID())
	assert.True(t, rep.OK())
}

func TestReplay_named_dead_letters(t *testing.T) {
	s := blob.NewMemory()
	submit(t, s, jobEvent(t, "job-1", nil))
	kill(t, s, pageEvent(t, "job-1", 1), "ocrflow://ocrflow-recognize", 503, "engine", t0)
	_, err := dlq.Replay(t.Context(), s, &sender{}, dlq.Request{IDs: []string{"job-1-p1-rendered"}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		req     dlq.Request
		wantErr error
		check   func(t *testing.T, rep dlq.Report)
	}{
		{"unknown_id", dlq.Request{IDs: []string{"nope"}}, dlq.ErrNotFound, nil},
		{"none_named", dlq.Request{}, nil, nil},
		{"already_replayed", dlq.Request{IDs: []string{"job-1-p1-rendered"}}, nil, func(t *testing.T, rep dlq.Report) {
			assert.Empty(t, rep.Attempts)
			require.Len(t, rep.AlreadyReplayed, 1)
			assert.Equal(t, "replayed as job-1.r1", rep.AlreadyReplayed[0].Reason)
			assert.True(t, rep.OK(), "a dead letter replayed before is no failure")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send := &sender{}
			rep, err := dlq.Replay(t.Context(), s, send, tc.req)
			assert.Empty(t, send.sent, "published")
			if tc.check == nil {
				require.Error(t, err)
				if tc.wantErr != nil {
					assert.ErrorIs(t, err, tc.wantErr)
				}
				return
			}
			require.NoError(t, err)
			tc.check(t, rep)
		})
	}
}
