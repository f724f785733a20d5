package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/failure"
)

func TestFallback(t *testing.T) {
	transient := failure.Transient("model server answered 503")
	permanent := engine.GiveUp(engine.ReasonRepetition, "", "page 1: looped")
	last := func(context.Context) bool { return true }
	notLast := func(context.Context) bool { return false }
	for _, tc := range []struct {
		name       string
		primary    error
		fbErr      error
		last       func(context.Context) bool
		wantEngine string
		wantErr    error
		wantFB     bool
	}{
		{name: "primary_answers", last: last, wantEngine: "vllm"},
		{name: "transient_before_the_last_attempt_is_retried", primary: transient, last: notLast, wantErr: failure.ErrTransient},
		{name: "transient_on_the_last_attempt_falls_back", primary: transient, last: last, wantEngine: "fake", wantFB: true},
		{name: "unknown_attempts_fall_back_at_once", primary: transient, last: nil, wantEngine: "fake", wantFB: true},
		{name: "permanent_failure_is_the_pages_own", primary: permanent, last: last, wantErr: failure.ErrPermanent},
		{name: "fallback_failing_too_is_reported", primary: transient, fbErr: failure.Permanent("tesseract: bad image"), last: last, wantErr: failure.ErrPermanent, wantFB: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := &stub{name: "vllm", fn: func(context.Context, engine.Page) (engine.Result, error) {
				if tc.primary != nil {
					return engine.Result{}, tc.primary
				}
				return engine.Result{Markdown: "from vllm"}, nil
			}}
			fbCalled := false
			fb := &stub{name: "fake", fn: func(context.Context, engine.Page) (engine.Result, error) {
				fbCalled = true
				if tc.fbErr != nil {
					return engine.Result{}, tc.fbErr
				}
				return engine.Result{Markdown: "from fake"}, nil
			}}
			e := engine.Fallback(fb, tc.last)(primary)
			r, err := e.Recognize(t.Context(), engine.Page{Number: 1})
			assert.Equal(t, tc.wantFB, fbCalled, "fallback called")
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantEngine, r.Engine, "result %+v, want engine %s", r, tc.wantEngine)
			assert.True(t, strings.HasSuffix(r.Markdown, tc.wantEngine), "result %+v, want engine %s", r, tc.wantEngine)
			if tc.wantFB {
				assert.Equal(t, "vllm", r.Meta["fallback_from"], "meta %v does not record why the fallback answered", r.Meta)
				assert.Contains(t, r.Meta["fallback_reason"], "503", "meta %v does not record why the fallback answered", r.Meta)
			}
			assert.Equal(t, "vllm", e.Name(), "Name, want the primary's")
		})
	}
}

// TestFallback_leaves_time_for_the_fallback: on the last attempt the
// primary gets half the deadline, so a hanging server cannot use it all.
func TestFallback_leaves_time_for_the_fallback(t *testing.T) {
	primary := &stub{name: "vllm", fn: func(ctx context.Context, _ engine.Page) (engine.Result, error) {
		<-ctx.Done() // a server that never answers
		return engine.Result{}, ctx.Err()
	}}
	fb := &stub{name: "fake", fn: func(ctx context.Context, _ engine.Page) (engine.Result, error) {
		if err := ctx.Err(); err != nil {
			return engine.Result{}, err
		}
		return engine.Result{Markdown: "from fake"}, nil
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	r, err := engine.Fallback(fb, func(context.Context) bool { return true })(primary).Recognize(ctx, engine.Page{})
	require.NoError(t, err, "Recognize, want the fallback's answer within the deadline")
	assert.Equal(t, "fake", r.Engine, "Recognize = %+v, want the fallback's answer within the deadline", r)
}

func TestFallback_Check_checks_the_fallback_engine(t *testing.T) {
	e := engine.Fallback(engine.NewTesseract("/nonexistent/tesseract", ""), nil)(&stub{name: "vllm"})
	c, ok := e.(interface{ Check(context.Context) error })
	require.True(t, ok, "the fallback wrapper has no Check")
	assert.ErrorContains(t, c.Check(t.Context()), "fallback engine", "Check, want the missing tesseract reported")
}

// spender is a primary engine that spends tokens and ladder steps on a
// page and then fails with err.
type spender struct{ err error }

func (s spender) Name() string { return engine.NameVLLM }

func (s spender) Recognize(context.Context, engine.Page) (engine.Result, error) {
	return engine.Result{Usage: engine.Usage{PromptTokens: 10, CompletionTokens: 5}, Steps: []string{engine.StepLoop}}, s.err
}

// TestFallback_reports_what_the_primary_spent: the primary's tokens and
// ladder steps go with the answer, whoever gives it.
func TestFallback_reports_what_the_primary_spent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		last    bool
		wantErr bool
	}{
		{"fallback_answers_on_the_last_attempt", true, false},
		{"error_before_the_last_attempt", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := engine.Fallback(&engine.Fake{}, func(context.Context) bool { return tc.last })(spender{err: failure.Transient("503")})
			r, err := e.Recognize(t.Context(), engine.Page{Number: 1, Image: []byte("img")})
			assert.Equal(t, tc.wantErr, err != nil, "error %v", err)
			assert.Equal(t, engine.Usage{PromptTokens: 10, CompletionTokens: 5}, r.Usage, "usage")
			assert.Equal(t, []string{engine.StepLoop}, r.Steps, "steps")
			if !tc.wantErr {
				assert.Equal(t, engine.NameFake, r.Engine, "the fallback answered")
			}
		})
	}
}
