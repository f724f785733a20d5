package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/dlq"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// deadLetters writes the dead letters of two jobs: job-a died at convert
// (its job event, kept as submitted), job-b lost page 2 at recognize and
// has no submitted record (it cannot be replayed).
func deadLetters(t *testing.T, s scratch.Store) {
	t.Helper()
	ctx := t.Context()
	a, err := job.NewEvent(job.Spec{ID: "job-a", ContentID: "content-a"})
	require.NoError(t, err)
	require.NoError(t, scratch.Submit(ctx, s, "job-a", "test", a))
	deadA := a.Clone()
	deadA.SetID("job-a-dead-ocrflow-convert")
	deadA.SetExtension(events.ExtErrorCode, int32(503))
	deadA.SetExtension(events.ExtErrorDest, "ocrflow://ocrflow-convert")
	page, err := events.New(nil, events.PageRenderedID("job-b", 2), events.TypePageRendered, "/ocrflow/convert", 2, "job-b",
		events.PageRendered{JobID: "job-b", Page: 2, Pages: 3, Route: events.RouteOCR})
	require.NoError(t, err)
	for _, d := range []scratch.DeadLetter{
		{ReceivedAt: time.Now().Add(-90 * time.Minute), Code: 503, Dest: "ocrflow://ocrflow-convert",
			Reason: "fetch source: simple-content answered 503 Service Unavailable " + strings.Repeat("and more ", 20), Event: deadA},
		{ReceivedAt: time.Now().Add(-10 * time.Minute), Code: 500, Dest: "ocrflow://ocrflow-recognize", Reason: "engine down", Event: page},
	} {
		require.NoError(t, scratch.PutJSON(ctx, s, scratch.DeadLetterKey(d.Event.ID()), d))
	}
}

func TestDLQ_list_and_show(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		check    func(t *testing.T, stdout string)
	}{
		{"list_table", []string{"dlq", "list"}, 0, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 3, "header and two dead letters:\n%s", out)
			assert.Equal(t, []string{"ID", "JOB", "STAGE", "TYPE", "CODE", "REASON"}, strings.Fields(lines[0])[:6])
			assert.Contains(t, lines[0], "AGE")
			assert.Contains(t, lines[0], "REPLAYED AS")
			assert.Regexp(t, `^job-a-dead-ocrflow-convert +job-a +convert +simpleprocess\.job +503 +fetch source: simple-content answered 503 .*… +1h30m +-$`, lines[1])
			assert.Regexp(t, `^job-b-p2-rendered +job-b +recognize +ocr\.page\.rendered +500 +engine down +(9m59s|10m00s) +-$`, lines[2])
		}},
		{"list_json", []string{"dlq", "list", "--json"}, 0, func(t *testing.T, out string) {
			var got []dlq.Entry
			require.NoError(t, json.Unmarshal([]byte(out), &got), "stdout:\n%s", out)
			require.Len(t, got, 2)
			assert.Equal(t, "job-a-dead-ocrflow-convert", got[0].ID)
			assert.Equal(t, "convert", got[0].Stage)
			assert.Equal(t, "job-b", got[1].Job)
			assert.InDelta(t, 600, got[1].AgeSeconds, 5)
		}},
		{"show", []string{"dlq", "show", "job-b-p2-rendered"}, 0, func(t *testing.T, out string) {
			for _, w := range []string{"job        job-b", "stage      recognize", "code       500", "dest       ocrflow://ocrflow-recognize",
				"reason     engine down", `"type": "ocr.page.rendered"`, `"job_id": "job-b"`} {
				assert.Contains(t, out, w)
			}
		}},
		{"show_json", []string{"dlq", "show", "--json", "job-b-p2-rendered"}, 0, func(t *testing.T, out string) {
			var got struct {
				dlq.Entry
				Dest  string      `json:"dest"`
				Event event.Event `json:"event"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &got), "stdout:\n%s", out)
			assert.Equal(t, "job-b", got.Job)
			assert.Equal(t, "ocrflow://ocrflow-recognize", got.Dest)
			assert.Equal(t, events.PageRenderedID("job-b", 2), got.Event.ID())
		}},
		{"show_unknown", []string{"dlq", "show", "nope"}, 1, func(t *testing.T, out string) { assert.Empty(t, out) }},
		{"no_subcommand", []string{"dlq"}, 2, func(t *testing.T, out string) { assert.Empty(t, out) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deadLetters(t, scratchDir(t))
			var stdout, stderr syncBuffer
			code := run(t.Context(), tc.args, &stdout, &stderr)
			assert.Equal(t, tc.wantCode, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			tc.check(t, stdout.String())
		})
	}
}

func TestDLQ_list_empty(t *testing.T) {
	scratchDir(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"table", []string{"dlq", "list"}, "no dead letters\n"},
		{"json", []string{"dlq", "list", "--json"}, "[]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			require.Equal(t, 0, run(t.Context(), tc.args, &stdout, &stderr), "stderr:\n%s", stderr.String())
			assert.Equal(t, tc.want, stdout.String())
		})
	}
}

// TestDLQ_replay_dry_run says what it would publish, publishes nothing
// (no NATS is reachable) and changes nothing.
func TestDLQ_replay_dry_run(t *testing.T) {
	s := scratchDir(t)
	deadLetters(t, s)
	t.Setenv("NATS_URL", "nats://127.0.0.1:1") // nothing listens: a dry run must not connect
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"dlq", "replay", "--all", "--dry-run"}, &stdout, &stderr)
	assert.Equal(t, 1, code, "exit code (job-b cannot be replayed)\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "would replay job-a as job-a.r1 (job event from submitted; dead letters job-a-dead-ocrflow-convert)")
	assert.Contains(t, out, "cannot replay job-b-p2-rendered (job job-b): no submitted record and no job event among its dead letters")
	assert.Contains(t, out, "dry run: 1 attempt(s) would be published; nothing changed")
	for _, k := range []string{scratch.SubmittedKey("job-a.r1"), scratch.ReplayedKey("job-a")} {
		ok, err := s.Exists(t.Context(), k)
		require.NoError(t, err)
		assert.False(t, ok, "a dry run wrote %s", k)
	}
	l, err := dlq.Get(t.Context(), s, "job-a-dead-ocrflow-convert", time.Now())
	require.NoError(t, err)
	assert.Nil(t, l.ReplayedAt, "a dry run marked the dead letter")
}

// TestDLQ_replay_publishes_to_nats replays a named dead letter onto a NATS
// server and checks the attempt that arrives there; a second replay
// publishes nothing.
func TestDLQ_replay_publishes_to_nats(t *testing.T) {
	s := scratchDir(t)
	deadLetters(t, s)
	natsURL, rt, jobs := followJobs(t)

	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"dlq", "replay", "job-a-dead-ocrflow-convert", "--nats", natsURL}, &stdout, &stderr)
	require.Equal(t, 0, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	assert.Contains(t, stdout.String(), "replayed job-a as job-a.r1")
	assert.Contains(t, stdout.String(), "1 attempt(s) published to "+natsURL)
	select {
	case e := <-jobs:
		assert.Equal(t, "job-a.r1", e.ID())
		j, err := job.Parse(e)
		require.NoError(t, err)
		assert.Equal(t, "job-a", j.Hints.ReplayOf)
		assert.Equal(t, "content-a", j.ContentID)
	case <-time.After(10 * time.Second):
		require.Fail(t, "no job arrived on "+standalone.DefaultJobSubject)
	}

	// The list shows the mark; replaying again publishes nothing.
	stdout = syncBuffer{}
	require.Equal(t, 0, run(t.Context(), []string{"dlq", "list"}, &stdout, &stderr))
	assert.Regexp(t, `job-a-dead-ocrflow-convert .* job-a\.r1\n`, stdout.String())
	stdout = syncBuffer{}
	code = run(t.Context(), []string{"dlq", "replay", "job-a-dead-ocrflow-convert", "--nats", natsURL}, &stdout, &stderr)
	assert.Equal(t, 0, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	assert.Contains(t, stdout.String(), "skipped job-a-dead-ocrflow-convert: replayed as job-a.r1")
	assert.Contains(t, stdout.String(), "0 attempt(s) published")
	js, err := jetstream.New(rt.Conn())
	require.NoError(t, err)
	stream, err := js.Stream(t.Context(), standalone.DefaultStream)
	require.NoError(t, err)
	info, err := stream.Info(t.Context(), jetstream.WithSubjectFilter(standalone.DefaultJobSubject))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{standalone.DefaultJobSubject: 1}, info.State.Subjects, "jobs published in all")
}

// TestDLQ_replay_posts_to_a_broker_with_retries: with --broker the attempt
// is POSTed to the ingress as a CloudEvent, and a 503 is retried.
func TestDLQ_replay_posts_to_a_broker_with_retries(t *testing.T) {
	s := scratchDir(t)
	deadLetters(t, s)
	var mu sync.Mutex
	var got []string // Ce-Id of each request
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Ce-Id"))
		n := len(got)
		mu.Unlock()
		if n == 1 {
			http.Error(w, "scaling", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer broker.Close()
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"dlq", "replay", "--broker", broker.URL, "job-a-dead-ocrflow-convert"}, &stdout, &stderr)
	require.Equal(t, 0, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	assert.Contains(t, stdout.String(), "1 attempt(s) published to "+broker.URL)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"job-a.r1", "job-a.r1"}, got, "requests to the broker")
}
