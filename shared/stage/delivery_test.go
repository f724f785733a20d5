package stage_test

import (
	"context"
	"testing"

	"github.com/ocrflow/ocrflow/shared/stage"
)

func TestLastAttempt(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ctx          context.Context
		attempt, max int
		last         bool
	}{
		{"nothing_recorded", context.Background(), 1, 0, false},
		{"attempt_without_maximum", stage.WithAttempt(context.Background(), 5), 5, 0, false},
		{"first_of_seven", stage.WithMaxAttempts(stage.WithAttempt(context.Background(), 1), 7), 1, 7, false},
		{"seventh_of_seven", stage.WithMaxAttempts(stage.WithAttempt(context.Background(), 7), 7), 7, 7, true},
		{"single_delivery", stage.WithMaxAttempts(context.Background(), 1), 1, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a, m, l := stage.Attempt(tc.ctx), stage.MaxAttempts(tc.ctx), stage.LastAttempt(tc.ctx); a != tc.attempt || m != tc.max || l != tc.last {
				t.Errorf("Attempt, MaxAttempts, LastAttempt = %d, %d, %v; want %d, %d, %v", a, m, l, tc.attempt, tc.max, tc.last)
			}
		})
	}
}
