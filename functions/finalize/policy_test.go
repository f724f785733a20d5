package finalize_test

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/finalize"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// TestFinalize_page_failure_policy: a job completes with placeholders
// while its failed pages are at or below its max page error rate, and
// fails with error_type pages_failed above it, leaving the content store's
// failure trace and no result.
func TestFinalize_page_failure_policy(t *testing.T) {
	pages := make([]int, 20)
	for i := range pages {
		pages[i] = i + 1
	}
	for _, tc := range []struct {
		name     string
		rate     float64
		hint     string
		failed   int
		wantFail bool
	}{
		{name: "no_failed_page_completes", rate: 0.05, failed: 0},
		{name: "at_the_rate_completes", rate: 0.05, failed: 1},
		{name: "above_the_rate_fails", rate: 0.05, failed: 2, wantFail: true},
		{name: "strict_policy_fails_on_one_page", rate: 0, failed: 1, wantFail: true},
		{name: "hint_allows_more", rate: 0.05, hint: "0.5", failed: 4},
		{name: "hint_allows_none", rate: 0.5, hint: "0", failed: 1, wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "policy-" + tc.name
			j := newJob(t, id, pages, func(m *scratch.Manifest) {
				if tc.hint != "" {
					m.Hints["max_page_error_rate"] = tc.hint
				}
			})
			st := &recordingStorer{storer: &storer{}}
			fz := finalize.New(finalize.Config{Recipe: recipe, MaxPageErrorRate: tc.rate}, j.store, st, slog.New(slog.DiscardHandler))
			var last = j.finish(t, okPage(1, "page one"))
			for n := 2; n <= len(pages); n++ {
				p := okPage(n, "page "+strconv.Itoa(n))
				if n <= tc.failed+1 {
					p = failedPage(n, "permanent: page "+strconv.Itoa(n)+" unreadable")
				}
				last = j.finish(t, p)
			}
			reply, err := fz.Handle(t.Context(), last)
			require.NoError(t, err)
			require.NotNil(t, reply)
			if !tc.wantFail {
				assert.Equal(t, events.TypeJobCompleted, reply.Type())
				assert.Len(t, st.stored(), 1, "the result is stored")
				assert.Empty(t, st.failures)
				return
			}
			require.Equal(t, events.TypeJobFailed, reply.Type())
			var f events.JobFailed
			require.NoError(t, events.Decode(*reply, &f))
			assert.Equal(t, events.ErrorTypePagesFailed, f.ErrorType)
			assert.Len(t, f.FailedPages, tc.failed)
			assert.Contains(t, f.Message, "page 2: permanent: page 2 unreadable")
			assert.LessOrEqual(t, len(f.Message), 700)
			assert.Empty(t, st.stored(), "a failed job stores no result")
			require.Len(t, st.failures, 1, "it leaves the failure trace")
			assert.Equal(t, events.ErrorTypePagesFailed, st.failures[0].ErrorType)
			assert.Equal(t, recipe.Key("content-"+id, ""), st.failures[0].IdempotencyKey)
			o, ended, err := scratch.GetOutcome(t.Context(), j.store, id)
			require.NoError(t, err)
			assert.True(t, ended)
			assert.Equal(t, "failed", o.Status)

			again, err := fz.Handle(t.Context(), last)
			require.NoError(t, err)
			require.NotNil(t, again, "the deciding event's redelivery replies again")
			assert.Equal(t, reply.ID(), again.ID())
			assert.Len(t, st.failures, 1, "one trace however often the event comes")
		})
	}
}

// TestFinalize_progress_is_throttled_and_its_seq_grows: one progress
// event per job per interval from a process, unless enough pages finished
// since the last; every event's seq is above the one before it.
func TestFinalize_progress_is_throttled_and_its_seq_grows(t *testing.T) {
	pages := make([]int, 12)
	for i := range pages {
		pages[i] = i + 1
	}
	for _, tc := range []struct {
		name     string
		interval time.Duration
		every    int
		wantSeq  []int
	}{
		{name: "unthrottled_sends_every_page", wantSeq: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{name: "by_pages_only", every: 4, wantSeq: []int{1, 5, 9}},
		{name: "long_interval_and_pages", interval: time.Hour, every: 5, wantSeq: []int{1, 6, 11}},
		{name: "long_interval_alone", interval: time.Hour, wantSeq: []int{1}},
		{name: "elapsed_interval_sends_again", interval: time.Nanosecond, wantSeq: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(t, "progress-"+tc.name, pages)
			fz := finalize.New(finalize.Config{Recipe: recipe, MaxPageErrorRate: 1, ProgressInterval: tc.interval, ProgressPages: tc.every},
				j.store, &storer{}, slog.New(slog.DiscardHandler))
			var seqs []int
			for n := 1; n < len(pages); n++ {
				reply, err := fz.Handle(t.Context(), j.finish(t, okPage(n, "text")))
				require.NoError(t, err)
				if reply == nil {
					continue
				}
				require.Equal(t, events.TypeJobProgress, reply.Type())
				var p events.JobProgress
				require.NoError(t, events.Decode(*reply, &p))
				assert.Equal(t, p.PagesCompleted, p.Seq)
				seqs = append(seqs, p.Seq)
			}
			assert.Equal(t, tc.wantSeq, seqs)
			done, err := fz.Handle(t.Context(), j.finish(t, okPage(len(pages), "text")))
			require.NoError(t, err)
			require.NotNil(t, done)
			assert.Equal(t, events.TypeJobCompleted, done.Type(), "the job still ends")
		})
	}
}

// TestFinalize_lock_serializes_deliveries_of_the_winning_event: a
// duplicate of the winning event, delivered while the first copy is still
// storing, does not assemble beside it (it is told to retry); a copy that
// finds the lock of a delivery gone past its lease takes the work over.
func TestFinalize_lock_serializes_deliveries_of_the_winning_event(t *testing.T) {
	t.Run("duplicate_while_the_holder_works_retries", func(t *testing.T) {
		j := newJob(t, "lock-dup", []int{1, 2})
		j.finish(t, okPage(1, "one"))
		last := j.finish(t, okPage(2, "two"))
		st := &storer{gate: make(chan struct{})}
		fz := finalize.New(finalize.Config{Recipe: recipe, MaxPageErrorRate: 1, LockLease: time.Hour}, j.store, st, slog.New(slog.DiscardHandler))
		first := make(chan error, 1)
		go func() {
			_, err := fz.Handle(t.Context(), last)
			first <- err
		}()
		// Wait until the first copy holds the lock (it is then stuck in Store).
		require.Eventually(t, func() bool {
			ok, err := j.store.Exists(t.Context(), scratch.LockKey(j.id))
			return err == nil && ok
		}, 5*time.Second, time.Millisecond)
		reply, err := fz.Handle(t.Context(), last)
		require.Error(t, err, "the duplicate must not assemble beside the holder")
		assert.True(t, failure.Retryable(err), "it is retried later: %v", err)
		assert.Nil(t, reply)
		close(st.gate)
		require.NoError(t, <-first)
		assert.Len(t, st.stored(), 1, "stored once")
		again, err := fz.Handle(t.Context(), last)
		require.NoError(t, err)
		require.NotNil(t, again, "the retry finds the job ended and replies its terminal event")
		assert.Equal(t, events.TypeJobCompleted, again.Type())
		assert.Len(t, st.stored(), 1, "still stored once")
	})
	t.Run("stale_lock_is_taken_over", func(t *testing.T) {
		j := newJob(t, "lock-stale", []int{1})
		last := j.finish(t, okPage(1, "one"))
		require.NoError(t, scratch.PutJSON(t.Context(), j.store, scratch.LockKey(j.id),
			map[string]any{"event": last.ID(), "token": "gone", "at": time.Now().Add(-time.Hour)}))
		st := &storer{}
		fz := finalize.New(finalize.Config{Recipe: recipe, MaxPageErrorRate: 1, LockLease: time.Minute}, j.store, st, slog.New(slog.DiscardHandler))
		reply, err := fz.Handle(t.Context(), last)
		require.NoError(t, err)
		require.NotNil(t, reply)
		assert.Equal(t, events.TypeJobCompleted, reply.Type())
		assert.Len(t, st.stored(), 1)
	})
	t.Run("transient_failure_releases_the_lock", func(t *testing.T) {
		j := newJob(t, "lock-release", []int{1})
		last := j.finish(t, okPage(1, "one"))
		st := &storer{errs: []error{failure.Transient("simple-content busy")}}
		fz := finalize.New(finalize.Config{Recipe: recipe, MaxPageErrorRate: 1, LockLease: time.Hour}, j.store, st, slog.New(slog.DiscardHandler))
		_, err := fz.Handle(t.Context(), last)
		require.Error(t, err)
		reply, err := fz.Handle(t.Context(), last)
		require.NoError(t, err, "the retry takes the released lock at once")
		require.NotNil(t, reply)
		assert.Equal(t, events.TypeJobCompleted, reply.Type())
	})
}
