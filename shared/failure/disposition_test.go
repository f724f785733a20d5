package failure_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// TestDecide covers every error class on a middle attempt, the last
// attempt, and a transport that does not count attempts (Knative).
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		attempt  int
		max      int
		want     failure.Disposition
		wantHTTP int
	}{
		{"success_acks", nil, 1, 4, failure.Ack, http.StatusOK},
		{"transient_retries", failure.Transient("engine busy"), 1, 4, failure.Retry, http.StatusServiceUnavailable},
		{"unclassified_is_transient_and_retries", errors.New("connection reset"), 2, 4, failure.Retry, http.StatusServiceUnavailable},
		{"transient_on_the_last_attempt_dead_letters", failure.Transient("engine busy"), 4, 4, failure.DeadLetter, http.StatusServiceUnavailable},
		{"transient_past_the_last_attempt_dead_letters", failure.Transient("engine busy"), 5, 4, failure.DeadLetter, http.StatusServiceUnavailable},
		{"transient_without_a_count_retries", failure.Transient("engine busy"), 9, 0, failure.Retry, http.StatusServiceUnavailable},
		{"permanent_dead_letters_at_once", failure.Permanent("no manifest"), 1, 4, failure.DeadLetter, http.StatusInternalServerError},
		{"validation_dead_letters_at_once", failure.Validation("bad job"), 1, 4, failure.DeadLetter, http.StatusInternalServerError},
		{"permanent_without_a_count_dead_letters", failure.Permanent("no manifest"), 1, 0, failure.DeadLetter, http.StatusInternalServerError},
		{"unroutable_is_discarded", fmt.Errorf("%w: type x", failure.ErrUnroutable), 1, 4, failure.Discard, http.StatusBadRequest},
		{"unroutable_wins_over_its_class", fmt.Errorf("%w: %w", failure.ErrPermanent, failure.ErrUnroutable), 1, 4, failure.Discard, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, failure.Decide(tc.err, tc.attempt, tc.max))
			assert.Equal(t, tc.wantHTTP, failure.Status(tc.err))
		})
	}
}

func TestDisposition_String(t *testing.T) {
	for d, want := range map[failure.Disposition]string{
		failure.Ack: "ack", failure.Retry: "retry", failure.DeadLetter: "dead-letter", failure.Discard: "discard", failure.Disposition(99): "unknown",
	} {
		assert.Equal(t, want, d.String())
	}
}

func TestReason_and_Text_bound_their_length(t *testing.T) {
	long := errors.New(string(make([]byte, 5000)))
	assert.LessOrEqual(t, len(failure.Text(long)), failure.MaxMessage)
	r := failure.Reason(failure.Permanent("%s", "page 3: unreadable"))
	assert.Equal(t, "permanent: permanent: page 3: unreadable", r)
	assert.LessOrEqual(t, len(failure.Reason(long)), failure.MaxReason+len("transient: "))
}
