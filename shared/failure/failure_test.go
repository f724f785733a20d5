package failure_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/failure"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		want      failure.Type
		retryable bool
	}{
		{"nil_is_transient_but_not_retryable", nil, failure.TypeTransient, false},
		{"validation", failure.Validation("bad %s", "job"), failure.TypeValidation, false},
		{"permanent", failure.Permanent("model said 400"), failure.TypePermanent, false},
		{"transient", failure.Transient("503"), failure.TypeTransient, true},
		{"bare_sentinel", failure.ErrPermanent, failure.TypePermanent, false},
		{"wrapped_once", fmt.Errorf("convert: %w", failure.Validation("empty")), failure.TypeValidation, false},
		{"wrapped_twice", fmt.Errorf("stage: %w", fmt.Errorf("page 3: %w", failure.Permanent("x"))), failure.TypePermanent, false},
		{"joined_with_unclassified", errors.Join(errors.New("io"), failure.Validation("bad")), failure.TypeValidation, false},
		{"validation_wins_over_permanent", errors.Join(failure.Permanent("p"), failure.Validation("v")), failure.TypeValidation, false},
		{"unclassified_is_transient", errors.New("connection reset"), failure.TypeTransient, true},
		{"context_deadline_is_transient", fmt.Errorf("call: %w", context.DeadlineExceeded), failure.TypeTransient, true},
		{"string_lookalike_is_not_classified", errors.New("validation: looks classified"), failure.TypeTransient, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, failure.Classify(tc.err), "Classify(%v)", tc.err)
			assert.Equal(t, tc.retryable, failure.Retryable(tc.err), "Retryable(%v)", tc.err)
		})
	}
}

func TestConstructors_format_and_wrap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		sentinel error
		wantText string
	}{
		{"validation", failure.Validation("page %d of %d", 3, 2), failure.ErrValidation, "validation: page 3 of 2"},
		{"permanent", failure.Permanent("status %d", 400), failure.ErrPermanent, "permanent: status 400"},
		{"transient", failure.Transient("retry in %s", "5s"), failure.ErrTransient, "transient: retry in 5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, tc.err, tc.sentinel)
			assert.EqualError(t, tc.err, tc.wantText)
		})
	}
}

func TestAs(t *testing.T) {
	validation := failure.Validation("bad")
	cause := fmt.Errorf("open: %w", fs.ErrNotExist)
	for _, tc := range []struct {
		name      string
		class     error
		err       error
		want      failure.Type
		wantSame  bool  // returned unchanged
		wantCause error // still reachable with errors.Is
	}{
		{"unclassified_gets_the_class", failure.ErrPermanent, cause, failure.TypePermanent, false, fs.ErrNotExist},
		{"existing_class_is_kept", failure.ErrTransient, validation, failure.TypeValidation, true, failure.ErrValidation},
		{"wrapped_existing_class_is_kept", failure.ErrTransient, fmt.Errorf("x: %w", validation), failure.TypeValidation, true, failure.ErrValidation},
		{"unclassified_as_transient", failure.ErrTransient, cause, failure.TypeTransient, false, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := failure.As(tc.class, tc.err)
			assert.Equal(t, tc.want, failure.Classify(got), "Classify(As(%v, %v))", tc.class, tc.err)
			assert.Equal(t, tc.wantSame, got == tc.err, "As returned %v; is it the input unchanged", got)
			assert.ErrorIs(t, got, tc.wantCause, "As(%v) lost %v from the chain", tc.err, tc.wantCause)
		})
	}
	t.Run("nil_stays_nil", func(t *testing.T) {
		assert.NoError(t, failure.As(failure.ErrTransient, nil), "As(nil), want nil")
	})
}

func TestMessage(t *testing.T) {
	const ellipsis = "…"
	for _, tc := range []struct {
		name string
		err  error
		n    int
		want string // "" means: check only the invariants
	}{
		{name: "nil", err: nil, n: 10, want: ""},
		{name: "short_kept", err: errors.New("short"), n: 10, want: "short"},
		{name: "exactly_n_kept", err: errors.New("0123456789"), n: 10, want: "0123456789"},
		{name: "ascii_cut_with_ellipsis", err: errors.New("0123456789abc"), n: 10, want: "0123456" + ellipsis},
		{name: "two_byte_runes", err: errors.New(strings.Repeat("é", 20)), n: 11},
		{name: "three_byte_runes", err: errors.New(strings.Repeat("€", 20)), n: 10},
		{name: "four_byte_runes", err: errors.New(strings.Repeat("😀", 20)), n: 12},
		{name: "mixed_at_every_cut", err: errors.New("ab€cdé😀fg€€h" + strings.Repeat("x", 10)), n: 13},
		{name: "nats_body_limit", err: errors.New(strings.Repeat("Fehler größer als erlaubt ", 100)), n: 768},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := failure.Message(tc.err, tc.n)
			if tc.err == nil {
				assert.Empty(t, got, "Message(nil)")
				return
			}
			if tc.want != "" {
				assert.Equal(t, tc.want, got, "Message")
			}
			checkMessage(t, tc.err.Error(), got, tc.n)
		})
	}
	t.Run("every_cut_of_a_multibyte_string", func(t *testing.T) {
		s := "Zürich → 東京 😀 ok"
		for n := len("…"); n <= len(s)+1; n++ {
			checkMessage(t, s, failure.Message(errors.New(s), n), n)
		}
	})
}

// checkMessage asserts Message's contract for the original text s and its
// result got at limit n: ≤ n bytes, valid UTF-8, a prefix of s plus "…"
// when cut.
func checkMessage(t *testing.T, s, got string, n int) {
	t.Helper()
	assert.LessOrEqual(t, len(got), n, "n=%d: Message is %d bytes: %q", n, len(got), got)
	assert.True(t, utf8.ValidString(got), "n=%d: Message cut inside a rune: %q", n, got)
	if len(s) <= n {
		assert.Equal(t, s, got, "n=%d: Message, want it unchanged", n)
		return
	}
	prefix, ok := strings.CutSuffix(got, "…")
	assert.True(t, ok && strings.HasPrefix(s, prefix), "n=%d: Message = %q, want a prefix of %q followed by …", n, got, s)
	// The cut keeps as much as fits: the next rune would not have.
	next, size := utf8.DecodeRuneInString(s[len(prefix):])
	assert.False(t, next != utf8.RuneError && len(prefix)+size+len("…") <= n, "n=%d: Message = %q dropped %q although it fits", n, got, next)
}

func TestMessage_tiny_limits(t *testing.T) {
	for _, n := range []int{3, 2, 1, 0} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			var got string
			require.NotPanics(t, func() { got = failure.Message(errors.New("hello world"), n) })
			assert.LessOrEqual(t, len(got), n, "Message(err, %d) = %q, want ≤ %d bytes", n, got, n)
			assert.True(t, utf8.ValidString(got), "Message(err, %d) = %q, want valid UTF-8", n, got)
		})
	}
}

// FuzzMessage checks Message's contract on arbitrary text and limits.
func FuzzMessage(f *testing.F) {
	f.Add("plain ascii error text", 10)
	f.Add("Zürich → 東京 😀", 9)
	f.Add(strings.Repeat("€", 300), 768)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if !utf8.ValidString(s) {
			t.Skip("error texts are UTF-8")
		}
		n = len("…") + abs(n)%1024 // limits below len("…") are a known bug
		checkMessage(t, s, failure.Message(errors.New(s), n), n)
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}
