package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/obs/obstest"
)

// spending is an engine that answers with res and err.
type spending struct {
	res engine.Result
	err error
}

func (s spending) Name() string { return engine.NameVLLM }
func (s spending) Recognize(context.Context, engine.Page) (engine.Result, error) {
	return s.res, s.err
}

// TestObservedEngine_records_outcome_tokens_and_steps: one call's outcome
// (fallback when the fallback engine answered), what it spent, and no
// call left in flight.
func TestObservedEngine_records_outcome_tokens_and_steps(t *testing.T) {
	spent := engine.Result{Usage: engine.Usage{PromptTokens: 700, CompletionTokens: 90}, Steps: []string{engine.StepLoop, engine.StepEmpty}}
	for _, tc := range []struct {
		name    string
		next    spending
		outcome string
	}{
		{"answered", spending{res: engine.Result{Markdown: "x", Usage: spent.Usage, Steps: spent.Steps}}, obs.OutcomeOK},
		{"answered_by_the_primary_through_the_fallback_wrapper", spending{res: engine.Result{Engine: engine.NameVLLM, Usage: spent.Usage, Steps: spent.Steps}}, obs.OutcomeOK},
		{"fallback_answered", spending{res: engine.Result{Engine: engine.NameTesseract, Usage: spent.Usage, Steps: spent.Steps}}, obs.OutcomeFallback},
		{"unavailable", spending{res: spent, err: failure.Transient("503")}, "transient"},
		{"gave_up", spending{res: spent, err: engine.GiveUp(engine.ReasonRepetition, "", "page 1: looped")}, "permanent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := obs.NewMetrics()
			_, err := observeEngine(tc.next, m).Recognize(t.Context(), engine.Page{Number: 1})
			require.Equal(t, tc.next.err, err, "the error is passed on as it is")
			got := obstest.ScrapeHandler(t, m.Handler())
			vllm := func(labels ...string) map[string]string {
				l := map[string]string{"engine": engine.NameVLLM}
				for i := 0; i+1 < len(labels); i += 2 {
					l[labels[i]] = labels[i+1]
				}
				return l
			}
			assert.InDelta(t, 1, got.Value(obs.MetricEngineDuration, vllm("outcome", tc.outcome)), 0, "calls with outcome %s", tc.outcome)
			assert.InDelta(t, 0, got.Value(obs.MetricEngineInflight, vllm()), 0, "in flight after the call")
			assert.InDelta(t, 700, got.Value(obs.MetricEngineTokens, vllm("kind", "prompt")), 0, "prompt tokens")
			assert.InDelta(t, 90, got.Value(obs.MetricEngineTokens, vllm("kind", "completion")), 0, "completion tokens")
			assert.InDelta(t, 1, got.Value(obs.MetricEngineSteps, vllm("step", engine.StepLoop)), 0, "loop steps")
			assert.InDelta(t, 1, got.Value(obs.MetricEngineSteps, vllm("step", engine.StepEmpty)), 0, "empty steps")
		})
	}
}
