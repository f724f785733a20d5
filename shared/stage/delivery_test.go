package stage_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

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
			assert.Equal(t, tc.attempt, stage.Attempt(tc.ctx), "Attempt")
			assert.Equal(t, tc.max, stage.MaxAttempts(tc.ctx), "MaxAttempts")
			assert.Equal(t, tc.last, stage.LastAttempt(tc.ctx), "LastAttempt")
		})
	}
}
