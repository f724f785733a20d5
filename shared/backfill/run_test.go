package backfill_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tendant/simple-content/pkg/simplecontent/repo/memory"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/backfill"
	"github.com/ocrflow/ocrflow/shared/backfill/backfilltest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// jetStream starts the standalone runtime's stream on an in-process NATS
// server and returns the backfill's transport over it.
func jetStream(t *testing.T) (*backfill.NATS, jetstream.JetStream) {
	t.Helper()
	rt, err := standalone.New(context.Background(), standalone.Config{Server: standalone.ServerConfig{StoreDir: t.TempDir()}})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, rt.Close(ctx))
	})
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	n, err := backfill.NewNATS(rt.Conn(), "", "", triggers)
	require.NoError(t, err)
	js, err := jetstream.New(rt.Conn())
	require.NoError(t, err)
	return n, js
}

// streamJobs returns the job events the stream holds, in order.
func streamJobs(t *testing.T, js jetstream.JetStream) []jobEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, standalone.DefaultStream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	total := int(info.State.Msgs)
	if total == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{standalone.DefaultJobSubject, standalone.DefaultJobSubject + ".>"}})
	require.NoError(t, err)
	var out []jobEvent
	for len(out) < total {
		batch, err := cons.Fetch(total-len(out), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		got := 0
		for msg := range batch.Messages() {
			got++
			e, err := standalone.Decode(msg.Headers(), msg.Data())
			require.NoError(t, err)
			j, err := job.Parse(e)
			require.NoError(t, err)
			out = append(out, jobEvent{id: e.ID(), source: e.Source(), job: j})
		}
		require.NoError(t, batch.Error())
		require.NotZero(t, got, "the stream holds %d messages, %d read", total, len(out))
	}
	return out
}

type jobEvent struct {
	id, source string
	job        job.Job
}

// counts returns how often each job id appears.
func counts(evs []jobEvent) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		m[e.id]++
	}
	return m
}

// expectedJobs returns the job ids of the fixture contents keep selects.
func expectedJobs(fx backfilltest.Fixture, keep func(backfilltest.Seeded) bool) map[string]string {
	out := map[string]string{}
	for _, id := range fx.IDs(keep) {
		out[backfill.JobID(id, currentKey(id))] = id
	}
	return out
}

func selectable(c backfilltest.Seeded) bool { return uploaded(c) && readable(c) && fresh(c) }

// everything selects every live original.
var everything = backfill.Filter{MIME: []string{"*"}, Statuses: []string{"uploaded", "created", "processing", "failed", "archived"}}

// TestRun_submits_each_selected_content_once publishes the selected
// contents' jobs to JetStream and checks each job (id, source, priority,
// content), its claim, and that running the same backfill again submits
// nothing.
func TestRun_submits_each_selected_content_once(t *testing.T) {
	for _, tc := range []struct {
		name     string
		priority job.Priority
		want     job.Priority
	}{
		{"low_priority_by_default", "", job.PriorityLow},
		{"priority_as_given", job.PriorityHigh, job.PriorityHigh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := memory.New()
			fx := backfilltest.Seed(t, repo, 90, currentKey, oldKey)
			want := expectedJobs(fx, selectable)
			pub, js := jetStream(t)
			scr := newScratch()
			cfg := backfill.Config{
				Source: backfill.NewDB(repo), Filter: backfill.Filter{MissingOCR: true}, Key: currentKey,
				Scratch: scr, Publisher: pub, Priority: tc.priority, Batch: 8,
			}
			sum, err := backfill.Run(t.Context(), cfg)
			require.NoError(t, err)
			assert.True(t, sum.Done)
			assert.Equal(t, int64(len(want)), sum.Submitted)
			evs := streamJobs(t, js)
			require.Len(t, evs, len(want))
			for _, e := range evs {
				contentID, ok := want[e.id]
				require.True(t, ok, "job %s was not expected", e.id)
				c, _ := fx.ByID(contentID)
				assert.Equal(t, backfill.EventSource, e.source)
				assert.Equal(t, contentID, e.job.ContentID)
				assert.Equal(t, c.Tenant, e.job.TenantID)
				assert.Equal(t, c.Owner, e.job.OwnerID)
				assert.Equal(t, tc.want, e.job.Hints.Priority)
				var claim scratch.Submitted
				require.NoError(t, scratch.GetJSON(t.Context(), scr, scratch.SubmittedKey(e.id), &claim))
				assert.Equal(t, backfill.ClaimedBy+" "+sum.Run, claim.By)
			}
			assert.Len(t, counts(evs), len(want), "no job twice")

			again, err := backfill.Run(t.Context(), cfg)
			require.NoError(t, err)
			assert.Zero(t, again.Submitted, "a re-run submits nothing")
			assert.Equal(t, int64(len(want)), again.Skipped[backfill.ReasonSubmitted])
			assert.Len(t, streamJobs(t, js), len(want))
		})
	}
}

// hooked wraps a Publisher with actions around the n-th publish.
type hooked struct {
	next   backfill.Publisher
	before func(n int) error
	after  func(n int)
	n      atomic.Int64
}

func (h *hooked) Publish(ctx context.Context, e event.Event) (bool, error) {
	n := int(h.n.Add(1))
	if h.before != nil {
		if err := h.before(n); err != nil {
			return false, err
		}
	}
	dup, err := h.next.Publish(ctx, e)
	if err == nil && h.after != nil {
		h.after(n)
	}
	return dup, err
}

// TestRun_resume_publishes_every_job_exactly_once stops a backfill in the
// middle in three ways — an interrupt (SIGINT: the batch in hand is
// finished), a hard stop while publishing (a kill: a job claimed and not
// sent), a transport failure — and resumes it from its checkpoint: the
// stream then holds every selected job exactly once.
func TestRun_resume_publishes_every_job_exactly_once(t *testing.T) {
	const stopAt = 26 // the 26th publish, in the fourth batch of 8
	for _, tc := range []struct {
		name            string
		stop            func(cancel context.CancelFunc, interrupt chan struct{}) (before func(int) error, after func(int))
		wantErr         error
		wantFirst       int64 // jobs the first run reports submitted
		wantUnpublished int   // jobs of the batch in hand it reports unpublished
		wantRepublish   int64
	}{
		{
			name: "interrupted_finishes_the_batch_in_hand",
			stop: func(_ context.CancelFunc, interrupt chan struct{}) (func(int) error, func(int)) {
				return nil, func(n int) {
					if n == stopAt {
						close(interrupt)
					}
				}
			},
			wantErr: backfill.ErrInterrupted, wantFirst: 32,
		},
		{
			name: "killed_while_publishing_a_claimed_job",
			stop: func(cancel context.CancelFunc, _ chan struct{}) (func(int) error, func(int)) {
				return func(n int) error {
					if n == stopAt {
						cancel()
						return context.Canceled
					}
					return nil
				}, nil
			},
			wantErr: context.Canceled, wantFirst: stopAt - 1, wantUnpublished: 32 - stopAt + 1, wantRepublish: stopAt - 24,
		},
		{
			name: "transport_failed",
			stop: func(context.CancelFunc, chan struct{}) (func(int) error, func(int)) {
				return func(n int) error {
					if n == stopAt {
						return errors.New("nats: connection closed")
					}
					return nil
				}, nil
			},
			wantErr: errors.New("nats: connection closed"), wantFirst: stopAt - 1, wantUnpublished: 32 - stopAt + 1, wantRepublish: stopAt - 24,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := memory.New()
			fx := backfilltest.Seed(t, repo, 120, currentKey, oldKey)
			// Every live original is selected, so a batch of 8 contents is
			// 8 jobs and the stop falls where the test says.
			want := expectedJobs(fx, func(c backfilltest.Seeded) bool { return !c.Deleted })
			pub, js := jetStream(t)
			scr := newScratch()
			cp := filepath.Join(t.TempDir(), "backfill.json")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			interrupt := make(chan struct{})
			before, after := tc.stop(cancel, interrupt)
			cfg := backfill.Config{
				Source: backfill.NewDB(repo), Filter: everything, Key: currentKey, Scratch: scr,
				Publisher: &hooked{next: pub, before: before, after: after}, Batch: 8, Checkpoint: cp, Interrupt: interrupt,
			}
			first, err := backfill.Run(ctx, cfg)
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.wantErr.Error())
			assert.Equal(t, tc.wantFirst, first.Submitted)
			assert.Len(t, first.Unpublished, tc.wantUnpublished)
			assert.False(t, first.Done)
			saved, ok, err := backfill.ReadCheckpoint(cp)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, first.Run, saved.Run)

			cfg.Publisher, cfg.Interrupt, cfg.Resume = pub, nil, true
			second, err := backfill.Run(t.Context(), cfg)
			require.NoError(t, err)
			assert.True(t, second.Done)
			assert.True(t, second.Resumed)
			assert.Equal(t, first.Run, second.Run, "a resumed run is the same backfill")
			assert.Equal(t, int64(len(want)), second.Submitted, "submitted in all")
			assert.Equal(t, tc.wantRepublish, second.Republished)
			got := counts(streamJobs(t, js))
			assert.Len(t, got, len(want))
			for id := range want {
				assert.Equal(t, 1, got[id], "job %s in the stream", id)
			}
		})
	}
}

// TestRun_rate_holds_within_ten_percent publishes at --rate 50 and counts
// the publishes in the first five seconds: the token bucket's rate, within
// 10 %.
func TestRun_rate_holds_within_ten_percent(t *testing.T) {
	const rate = 50.0
	repo := memory.New()
	backfilltest.Seed(t, repo, 300, currentKey, oldKey)
	rec := &recorder{}
	sum, err := backfill.Run(t.Context(), backfill.Config{
		Source: backfill.NewDB(repo), Key: currentKey, Scratch: newScratch(), Publisher: rec, Rate: rate, Filter: everything,
	})
	require.NoError(t, err)
	require.Greater(t, sum.Submitted, int64(5.5*rate), "enough jobs to fill a 5 s window")
	rec.mu.Lock()
	at := rec.at
	rec.mu.Unlock()
	window := 5 * time.Second
	n := 0
	for _, ts := range at {
		if ts.Sub(at[0]) < window {
			n++
		}
	}
	measured := float64(n) / window.Seconds()
	t.Logf("rate %.0f/s: %d publishes in the first %s = %.2f/s (%.1f %% off); overall %.2f/s over %d",
		rate, n, window, measured, 100*(measured-rate)/rate, float64(len(at)-1)/at[len(at)-1].Sub(at[0]).Seconds(), len(at))
	assert.InEpsilon(t, rate, measured, 0.10)
}

// fakeGauge is a transport backlog a test sets.
type fakeGauge struct {
	value atomic.Int64
	calls atomic.Int64
}

func (g *fakeGauge) Backlog(context.Context) (int, error) {
	g.calls.Add(1)
	return int(g.value.Load()), nil
}

// TestRun_max_pending_pauses_publishing checks that publishing pauses at
// --max-pending: on the backfill's own jobs without an outcome (the
// pipeline, played by the test, finishes one only when five wait), and on
// the transport's backlog.
func TestRun_max_pending_pauses_publishing(t *testing.T) {
	t.Run("own_jobs_without_an_outcome", func(t *testing.T) {
		const maxPending = 5
		repo := memory.New()
		fx := backfilltest.Seed(t, repo, 80, currentKey, oldKey)
		want := expectedJobs(fx, selectable)
		scr := newScratch()
		var published, completed, maxInflight atomic.Int64
		queue := make(chan string, len(want))
		// kick says the backfill paused: the pipeline finishes a job only
		// then, so the cap is reached however the goroutines interleave.
		kick := make(chan struct{}, 1)
		pub := &recorder{
			hook: func(int) error {
				inflight := published.Load() - completed.Load() + 1
				if inflight > maxInflight.Load() {
					maxInflight.Store(inflight)
				}
				return nil
			},
			after: func(int) { published.Add(1) },
		}
		pub.afterID = func(id string) { queue <- id }
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { // the pipeline: finishes the oldest job when five wait and the backfill paused
			var waiting []string
			for {
				select {
				case id := <-queue:
					waiting = append(waiting, id)
					continue
				case <-kick:
				case <-done:
					return
				}
				if len(waiting) >= maxPending {
					completed.Add(1)
					assert.NoError(t, scratch.PutJSON(context.Background(), scr, scratch.OutcomeKey(waiting[0]), scratch.Outcome{Status: "completed"}))
					waiting = waiting[1:]
				}
			}
		})
		var paused atomic.Bool
		sum, err := backfill.Run(t.Context(), backfill.Config{
			Source: backfill.NewDB(repo), Filter: backfill.Filter{MissingOCR: true}, Key: currentKey, Scratch: scr,
			Publisher: pub, MaxPending: maxPending, Poll: 5 * time.Millisecond, Batch: 7,
			Progress: func(p backfill.Progress) {
				if p.Waiting {
					paused.Store(true)
					select {
					case kick <- struct{}{}:
					default:
					}
				}
			},
		})
		close(done)
		wg.Wait()
		require.NoError(t, err)
		assert.Equal(t, int64(len(want)), sum.Submitted)
		assert.Equal(t, int64(maxPending), maxInflight.Load(), "jobs without an outcome reach the cap and never pass it")
		assert.True(t, paused.Load(), "publishing paused")
	})
	t.Run("transport_backlog", func(t *testing.T) {
		repo := memory.New()
		fx := backfilltest.Seed(t, repo, 40, currentKey, oldKey)
		want := expectedJobs(fx, selectable)
		g := &fakeGauge{}
		g.value.Store(5000)
		var released atomic.Bool
		pub := &recorder{hook: func(int) error {
			assert.True(t, released.Load(), "published while the backlog was above --max-pending")
			return nil
		}}
		go func() {
			deadline := time.After(30 * time.Second)
			for g.calls.Load() < 3 { // paused and polling
				select {
				case <-deadline:
					return
				case <-time.After(time.Millisecond):
				}
			}
			released.Store(true)
			g.value.Store(0)
		}()
		sum, err := backfill.Run(t.Context(), backfill.Config{
			Source: backfill.NewDB(repo), Filter: backfill.Filter{MissingOCR: true}, Key: currentKey, Scratch: newScratch(),
			Publisher: pub, Gauge: g, MaxPending: 1000, Poll: 5 * time.Millisecond,
		})
		require.NoError(t, err)
		assert.Equal(t, int64(len(want)), sum.Submitted)
		assert.GreaterOrEqual(t, g.calls.Load(), int64(3))
	})
}

// TestCheckpoint_guards checks what a checkpoint refuses and allows.
func TestCheckpoint_guards(t *testing.T) {
	repo := memory.New()
	backfilltest.Seed(t, repo, 30, currentKey, oldKey)
	base := func(cp string) backfill.Config {
		return backfill.Config{
			Source: backfill.NewDB(repo), Filter: backfill.Filter{MissingOCR: true}, Key: currentKey,
			Scratch: newScratch(), Publisher: &recorder{}, Checkpoint: cp, Batch: 4,
		}
	}
	// unfinished leaves a checkpoint of a backfill interrupted after its
	// first batch.
	unfinished := func(t *testing.T) string {
		cp := filepath.Join(t.TempDir(), "cp.json")
		interrupt := make(chan struct{})
		close(interrupt)
		cfg := base(cp)
		cfg.Interrupt = interrupt
		_, err := backfill.Run(t.Context(), cfg)
		require.ErrorIs(t, err, backfill.ErrInterrupted)
		return cp
	}
	finished := func(t *testing.T) string {
		cp := filepath.Join(t.TempDir(), "cp.json")
		_, err := backfill.Run(t.Context(), base(cp))
		require.NoError(t, err)
		return cp
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T) string
		change  func(*backfill.Config)
		wantErr string
		check   func(t *testing.T, s backfill.Summary)
	}{
		{"resume_with_other_filters_is_refused", unfinished,
			func(c *backfill.Config) { c.Resume, c.Filter.Tenants = true, []string{backfilltest.Tenants[1]} }, "another selection", nil},
		{"resume_with_another_model_is_refused", unfinished,
			func(c *backfill.Config) { c.Resume, c.Key = true, newerKey }, "another selection", nil},
		{"fresh_run_over_an_unfinished_checkpoint_is_refused", unfinished, func(*backfill.Config) {}, "pass --resume", nil},
		{"resume_without_a_checkpoint_file_is_refused", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.json") },
			func(c *backfill.Config) { c.Resume = true }, "no checkpoint", nil},
		{"resume_without_a_checkpoint_is_refused", func(*testing.T) string { return "" },
			func(c *backfill.Config) { c.Resume = true }, "needs --checkpoint", nil},
		{"dry_run_with_a_checkpoint_is_refused", func(t *testing.T) string { return filepath.Join(t.TempDir(), "cp.json") },
			func(c *backfill.Config) { c.DryRun = true }, "dry run", nil},
		{"resume_of_a_finished_backfill_does_nothing", finished, func(c *backfill.Config) { c.Resume = true }, "",
			func(t *testing.T, s backfill.Summary) { assert.True(t, s.Done) }},
		{"fresh_run_over_a_finished_checkpoint_starts_over", finished, func(*backfill.Config) {}, "",
			func(t *testing.T, s backfill.Summary) {
				assert.Positive(t, s.Submitted, "a new scratch store: nothing claimed")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base(tc.setup(t))
			tc.change(&cfg)
			sum, err := backfill.Run(t.Context(), cfg)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, sum)
		})
	}
}

// TestBroker_retries_until_accepted posts to a broker that is busy at
// first, and to one that refuses the event.
func TestBroker_retries_until_accepted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []int
		wantErr  bool
		wantHits int
	}{
		{"busy_then_accepted", []int{503, 429, 202}, false, 3},
		{"refused_is_not_retried", []int{400}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			var got []string
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(hits.Add(1))
				mu.Lock()
				got = append(got, r.Header.Get("Ce-Id"))
				mu.Unlock()
				w.WriteHeader(tc.answers[min(n, len(tc.answers))-1])
			}))
			defer srv.Close()
			b, err := backfill.NewBroker(srv.URL)
			require.NoError(t, err)
			e, err := job.NewEvent(job.Spec{ID: "bf-x", ContentID: "x", Source: backfill.EventSource})
			require.NoError(t, err)
			_, err = b.Publish(t.Context(), e)
			if tc.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, int64(tc.wantHits), hits.Load())
			mu.Lock()
			defer mu.Unlock()
			for _, id := range got {
				assert.Equal(t, "bf-x", id, "every attempt posts the same event")
			}
		})
	}
}

// TestNATS_backlog_counts_convert_and_recognize_consumers checks the
// JetStream backlog: messages waiting at the convert and recognize
// consumers, plus those delivered and not acknowledged.
func TestNATS_backlog_counts_convert_and_recognize_consumers(t *testing.T) {
	pub, js := jetStream(t)
	assert.ElementsMatch(t, []string{
		"ocrflow-convert", "ocrflow-convert-high", "ocrflow-convert-low",
		"ocrflow-convert-continue", "ocrflow-convert-continue-high", "ocrflow-convert-continue-low",
		"ocrflow-recognize", "ocrflow-recognize-high", "ocrflow-recognize-bulk",
	}, pub.Consumers(), "every lane of convert and recognize")
	n, err := pub.Backlog(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "no consumer yet: nothing waits")

	ctx := t.Context()
	s, err := js.Stream(ctx, standalone.DefaultStream)
	require.NoError(t, err)
	convert, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ocrflow-convert", FilterSubject: standalone.DefaultJobSubject, AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ocrflow-recognize", FilterSubject: standalone.SubjectFor(standalone.DefaultJobSubject, events.TypePageRendered), AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	for i := range 3 {
		e, err := job.NewEvent(job.Spec{ID: "bf-" + strings.Repeat("a", i+1), ContentID: "c"})
		require.NoError(t, err)
		_, err = pub.Publish(ctx, e)
		require.NoError(t, err)
	}
	for i := range 2 {
		_, err := js.Publish(ctx, standalone.SubjectFor(standalone.DefaultJobSubject, events.TypePageRendered), []byte{byte(i)})
		require.NoError(t, err)
	}
	// JetStream counts a consumer's pending messages as its stream
	// signals them, a moment after the publish is acknowledged: the
	// backlog converges on the count rather than jumping to it.
	backlogReaches := func(want int, msg string) {
		t.Helper()
		assert.EventuallyWithT(t, func(c *assert.CollectT) {
			n, err := pub.Backlog(ctx)
			require.NoError(c, err)
			assert.Equal(c, want, n)
		}, 10*time.Second, 5*time.Millisecond, msg)
	}
	backlogReaches(5, "3 jobs and 2 pages waiting")

	batch, err := convert.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	require.NotNil(t, msg)
	n, err = pub.Backlog(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, n, "a job in progress still counts")
	require.NoError(t, msg.DoubleAck(ctx))
	backlogReaches(4, "a finished job does not")
}

// TestRun_limit_slices_the_backfill runs a backfill in slices of --limit
// 10 with --resume: each run submits the next ten, and together they
// submit every selected content once.
func TestRun_limit_slices_the_backfill(t *testing.T) {
	repo := memory.New()
	fx := backfilltest.Seed(t, repo, 60, currentKey, oldKey)
	want := expectedJobs(fx, selectable)
	require.Greater(t, len(want), 20)
	rec := &recorder{}
	cfg := backfill.Config{
		Source: backfill.NewDB(repo), Filter: backfill.Filter{MissingOCR: true}, Key: currentKey, Scratch: newScratch(),
		Publisher: rec, Batch: 7, Limit: 10, Checkpoint: filepath.Join(t.TempDir(), "cp.json"),
	}
	for _, slice := range []struct {
		limit         int64
		wantSubmitted int64
		wantDone      bool
	}{
		{10, 10, false},
		{10, 20, false},
		{0, int64(len(want)), true},
	} {
		cfg.Limit = slice.limit
		sum, err := backfill.Run(t.Context(), cfg)
		require.NoError(t, err)
		assert.Equal(t, slice.wantSubmitted, sum.Submitted, "submitted so far")
		assert.Equal(t, slice.wantDone, sum.Done)
		cfg.Resume = true
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), rec.jobs, "every job once")
}
