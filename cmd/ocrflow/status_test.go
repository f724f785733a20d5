package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/status"
)

// scratchDir points BLOB_URL at a new directory store and returns it.
func scratchDir(t *testing.T) *blob.Dir {
	t.Helper()
	isolate(t)
	dir := filepath.Join(t.TempDir(), "blobs")
	t.Setenv("BLOB_URL", "file://"+dir)
	s, err := blob.NewDir(dir)
	require.NoError(t, err)
	return s
}

// jobState writes a job's scratch state: submitted, then a manifest of
// pages pages when pages > 0, then records of the pages in done (page
// numbers; negative for a failed page), then the outcome (a terminal
// event type) when end is set.
type jobState struct {
	id      string
	hints   map[string]string
	pages   int
	done    []int
	end     string
	started time.Time
}

func (j jobState) write(t *testing.T, s scratch.Store) {
	t.Helper()
	ctx := t.Context()
	e, err := job.NewEvent(job.Spec{ID: j.id, ContentID: "content-" + j.id, TenantID: "tenant-a", Name: "report.pdf", Hints: j.hints})
	require.NoError(t, err)
	require.NoError(t, scratch.Submit(ctx, s, j.id, "test", e))
	if j.pages > 0 {
		m := scratch.Manifest{JobID: j.id, ContentID: "content-" + j.id, SourceName: "report.pdf", SourceFormat: "pdf",
			TotalPages: j.pages, StartedAt: j.started}
		for n := 1; n <= j.pages; n++ {
			m.Pages = append(m.Pages, n)
			require.NoError(t, s.Put(ctx, scratch.PageKey(j.id, n, "jpg"), strings.NewReader("x")))
		}
		require.NoError(t, scratch.PutJSON(ctx, s, scratch.ManifestKey(j.id), m))
	}
	for _, n := range j.done {
		r := scratch.PageRecord{Page: n, Status: events.PageOK, Route: events.RouteOCR, MarkdownKey: "k", DoneAt: j.started.Add(time.Second)}
		if n < 0 {
			r = scratch.PageRecord{Page: -n, Status: events.PageFailed, Route: events.RouteOCR, Reason: "transient: engine down", DoneAt: r.DoneAt}
		}
		require.NoError(t, scratch.PutRecord(ctx, s, j.id, r))
	}
	if j.end != "" {
		end(t, s, j.id, j.end)
	}
}

// end concludes job id with a terminal event of type typ.
func end(t *testing.T, s scratch.Store, id, typ string) {
	t.Helper()
	payload := any(events.JobCompleted{JobID: id, DerivedContentID: "derived-" + id})
	evID := events.CompletedID(id)
	if typ == events.TypeJobFailed {
		payload, evID = events.JobFailed{JobID: id, ErrorType: "transient", Message: "retries exhausted: fetch source: 503"}, events.FailedID(id)
	}
	e, err := events.New(nil, evID, typ, "/test", 0, id, payload)
	require.NoError(t, err)
	_, err = scratch.Conclude(t.Context(), s, id, "cause", e)
	require.NoError(t, err)
}

func TestStatus(t *testing.T) {
	started := time.Now().Add(-time.Minute).UTC()
	for _, tc := range []struct {
		name     string
		state    jobState
		wantCode int
		wantOut  []string // in the human screen
	}{
		{"queued", jobState{id: "q"}, 0, []string{"queued", "report.pdf", "content content-q", "submitted"}},
		{"recognizing", jobState{id: "r", pages: 4, done: []int{1, -2}, started: started}, 0, []string{
			"recognizing", "[", "50%", "2/4 pages", "gpu 1", "failed 1", "page 2: transient: engine down", "pages/s, about",
		}},
		{"completed", jobState{id: "c", pages: 2, done: []int{1, 2}, end: events.TypeJobCompleted, started: started}, 0, []string{
			"completed  2/2 pages", "derived-c", "finished",
		}},
		{"failed", jobState{id: "f", end: events.TypeJobFailed}, 1, []string{"failed", "transient: retries exhausted: fetch source: 503"}},
		{"replayed_attempt", jobState{id: "f.r1", hints: map[string]string{job.HintReplayOf: "f"}}, 0, []string{"replay of  f"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := scratchDir(t)
			tc.state.write(t, s)

			var stdout, stderr syncBuffer
			code := run(t.Context(), []string{"status", tc.state.id}, &stdout, &stderr)
			assert.Equal(t, tc.wantCode, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			for _, w := range tc.wantOut {
				assert.Contains(t, stdout.String(), w, "screen")
			}

			// --json prints exactly what status.Read says (flags may follow
			// the job id).
			stdout = syncBuffer{}
			code = run(t.Context(), []string{"status", tc.state.id, "--json"}, &stdout, &stderr)
			assert.Equal(t, tc.wantCode, code, "exit code with --json")
			want, err := status.Read(t.Context(), s, tc.state.id, time.Now())
			require.NoError(t, err)
			var got status.Job
			require.NoError(t, json.Unmarshal([]byte(stdout.String()), &got), "stdout:\n%s", stdout.String())
			if want.ETASeconds != nil { // they depend on when each was read
				require.NotNil(t, got.ETASeconds, "eta")
				assert.InDelta(t, *want.ETASeconds, *got.ETASeconds, 5)
				assert.InDelta(t, want.PagesPerSecond, got.PagesPerSecond, 0.01)
				got.ETASeconds, got.PagesPerSecond = want.ETASeconds, want.PagesPerSecond
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestStatus_unknown_job_and_usage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown_job", []string{"status", "nope"}, 3, "unknown job nope"},
		{"unknown_job_json", []string{"status", "--json", "nope"}, 3, "unknown job nope"},
		{"no_job", []string{"status"}, 2, "Usage: ocrflow status"},
		{"two_jobs", []string{"status", "a", "b"}, 2, "Usage: ocrflow status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scratchDir(t)
			var stdout, stderr syncBuffer
			code := run(t.Context(), tc.args, &stdout, &stderr)
			assert.Equal(t, tc.wantCode, code, "exit code\nstderr:\n%s", stderr.String())
			assert.Contains(t, stderr.String(), tc.wantErr)
			assert.Empty(t, stdout.String())
		})
	}
}

// TestStatus_watch follows a job to its end: one line per change when
// stdout is not a terminal (or one JSON object per change), then the exit
// status of the outcome.
func TestStatus_watch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		json     bool
		end      string
		wantCode int
	}{
		{"lines_until_completed", false, events.TypeJobCompleted, 0},
		{"json_until_failed", true, events.TypeJobFailed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := scratchDir(t)
			jobState{id: "w", pages: 2, started: time.Now().UTC()}.write(t, s)
			args := []string{"status", "--watch", "--interval", "5ms", "w"}
			if tc.json {
				args = append(args, "--json")
			}
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() { done <- run(t.Context(), args, &stdout, &stderr) }()

			// Move the job on once the watcher has printed its state.
			seen := func(want string) {
				t.Helper()
				deadline := time.After(10 * time.Second)
				for !strings.Contains(stdout.String(), want) {
					select {
					case code := <-done:
						require.Failf(t, "watch ended early", "exit %d, waiting for %q\nstdout:\n%s\nstderr:\n%s", code, want, stdout.String(), stderr.String())
					case <-deadline:
						require.Failf(t, "watch did not print", "waiting for %q\nstdout:\n%s", want, stdout.String())
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
			seen("recognizing")
			require.NoError(t, scratch.PutRecord(t.Context(), s, "w", scratch.PageRecord{Page: 1, Status: events.PageOK, Route: events.RouteText, MarkdownKey: "k"}))
			if tc.json {
				seen(`"done":1`)
			} else {
				seen("1/2 pages")
			}
			end(t, s, "w", tc.end)
			select {
			case code := <-done:
				assert.Equal(t, tc.wantCode, code, "exit code\nstderr:\n%s", stderr.String())
			case <-time.After(10 * time.Second):
				require.Fail(t, "watch did not end with the job")
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if tc.json {
				var states []status.State
				for _, l := range lines {
					var st status.Job
					require.NoError(t, json.Unmarshal([]byte(l), &st), "line %q", l)
					states = append(states, st.State)
				}
				assert.Equal(t, []status.State{status.Recognizing, status.Recognizing, status.Failed}, states, "one object per change")
				return
			}
			require.GreaterOrEqual(t, len(lines), 3, "stdout:\n%s", stdout.String())
			assert.Contains(t, lines[0], "w recognizing 0/2 pages")
			assert.Contains(t, lines[1], "w recognizing 1/2 pages")
			assert.Contains(t, lines[2], "w completed 1/2 pages")
			assert.Contains(t, stdout.String(), "result     derived-w", "the final screen")
		})
	}
}
