package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoal_met(t *testing.T) {
	for _, tc := range []struct {
		name string
		goal Goal
		row  Row
		want bool
	}{
		{"ratio_at_least_met", RatioAtLeast(0.95), Row{Ratio: 0.97}, true},
		{"ratio_at_least_missed", RatioAtLeast(0.95), Row{Ratio: 0.94}, false},
		{"ratio_at_most_met_at_limit", RatioAtMost(1), Row{Ratio: 1}, true},
		{"ratio_at_most_missed", RatioAtMost(1), Row{Ratio: 1.3}, false},
		{"value_below_met", ValueBelow(50, "ms"), Row{Value: 24}, true},
		{"value_below_missed_at_limit", ValueBelow(50, "ms"), Row{Value: 50}, false},
		{"value_at_least_met", ValueAtLeast(5000, "events/s"), Row{Value: 9000}, true},
		{"value_at_most_missed", ValueAtMost(3, "ms"), Row{Value: 3.5}, false},
		{"nan_never_meets", RatioAtMost(1), Row{Ratio: math.NaN()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.goal.Met(tc.row))
			assert.Equal(t, tc.want, tc.row.Judge(tc.goal).Pass)
		})
	}
}

func TestRow_compare_and_judge(t *testing.T) {
	r := Row{Name: "saturation_c64", Value: 62.08, Unit: "req"}.
		Compare(64, "req", "C").Judge(RatioAtLeast(0.95))
	assert.InDelta(t, 0.97, r.Ratio, 1e-9)
	assert.Equal(t, "ratio ≥ 0.95", r.Target)
	assert.True(t, r.Pass)

	failed := Row{Name: "x", Value: 1, Error: "boom"}.Compare(1, "", "").Judge(RatioAtMost(2))
	assert.False(t, failed.Pass, "a row that could not be measured never passes")
}

func TestWriteTable(t *testing.T) {
	rows := []Row{
		Row{Name: "saturation", Value: 62.08, Unit: "req"}.Compare(64, "req", "C").Judge(RatioAtLeast(0.95)),
		Row{Name: "cold_start", Value: 61, Unit: "ms", Note: "noisy\nmachine"}.Judge(ValueBelow(50, "ms")),
		{Name: "baseline_one_at_a_time_c8", Value: 1, Unit: "req", Reference: 8, RefUnit: "req", Ratio: 0.125},
		Failed("events", errors.New("nats: no servers")),
	}
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, rows))
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	require.Len(t, lines, 5, buf.String())

	for _, tc := range []struct {
		name  string
		line  string
		parts []string
	}{
		{"saturation_reads_name_then_ratio", lines[1], []string{"saturation 0.97 ", "ratio ≥ 0.95", "PASS", "62.1 req", "64 req C"}},
		{"missed_target_fails", lines[2], []string{"cold_start -", "value < 50 ms", "FAIL", "61 ms", "noisy machine"}},
		{"baseline_is_informational", lines[3], []string{"baseline_one_at_a_time_c8 0.12", "info"}},
		{"unmeasured_row_is_an_error", lines[4], []string{"events -", "ERROR", "nats: no servers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.parts {
				assert.Contains(t, strings.TrimLeft(tc.line, " "), p)
			}
		})
	}
}

func TestReport_json_round_trip(t *testing.T) {
	rows := []Row{
		Row{Name: "saturation", Value: 62, Unit: "req"}.Compare(64, "req", "C").Judge(RatioAtLeast(0.95)),
		Row{Name: "cold_start", Value: 61, Unit: "ms"}.Judge(ValueBelow(50, "ms")),
		{Name: "baseline", Value: 1},
	}
	rep := NewReport(context.Background(), t.TempDir(), false, rows)
	assert.Equal(t, 1, rep.Passed)
	assert.Equal(t, 1, rep.Failed)

	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, rep))
	var back Report
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	assert.Equal(t, rep.Rows, back.Rows)
	assert.Contains(t, buf.String(), `"ratio": 0.96875`)
}

func TestRun(t *testing.T) {
	ok := Producer{Name: "ok", Group: "gpu", Run: func(context.Context, *Env) ([]Row, error) {
		return []Row{{Name: "ok_row", Value: 1}}, nil
	}}
	broken := Producer{Name: "broken", Group: "events", Run: func(context.Context, *Env) ([]Row, error) {
		return []Row{{Name: "partial", Value: 2}}, errors.New("second half failed")
	}}
	empty := Producer{Name: "empty", Group: "cold", Run: func(context.Context, *Env) ([]Row, error) {
		return nil, nil
	}}
	rows := Run(context.Background(), &Env{}, []Producer{ok, broken, empty})
	require.Len(t, rows, 4)
	assert.Equal(t, "ok_row", rows[0].Name)
	assert.Equal(t, "partial", rows[1].Name, "rows measured before an error are kept")
	assert.Equal(t, "broken", rows[2].Name)
	assert.Equal(t, "second half failed", rows[2].Error)
	assert.Equal(t, "empty", rows[3].Name)
	assert.NotEmpty(t, rows[3].Error, "a producer with no rows is reported, not dropped")
}

func TestProducers_filter(t *testing.T) {
	p := Producer{Name: "saturation", Group: "gpu"}
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{"", true}, {"gpu", true}, {"satur", true}, {"memory,gpu", true}, {"memory", false}, {" , ", false},
	} {
		t.Run("filter_"+strings.NewReplacer(",", "_", " ", "").Replace(tc.filter), func(t *testing.T) {
			assert.Equal(t, tc.want, matches(p, tc.filter))
		})
	}
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {0.01234, "0.0123"}, {1.234, "1.23"}, {12.34, "12.3"}, {123.4, "123"}, {12345.6, "12346"},
	} {
		t.Run(tc.want, func(t *testing.T) { assert.Equal(t, tc.want, Number(tc.in)) })
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0.97, "0.97"}, {1.3, "1.30"}, {0.1249, "0.12"}, {0.0039, "0.0039"}, {0, "0.00"},
	} {
		t.Run(tc.want, func(t *testing.T) { assert.Equal(t, tc.want, Ratio(tc.in)) })
	}
}

func TestMedian(t *testing.T) {
	assert.True(t, math.IsNaN(Median(nil)))
	assert.InDelta(t, 2.0, Median([]float64{3, 1, 2}), 0)
	assert.InDelta(t, 2.5, Median([]float64{4, 1, 3, 2}), 0)
}

// The standalone runtime carries b.N events (publish → handler → ack,
// no-op handler); benchstat compares events/s across commits.
func BenchmarkEventThroughput(b *testing.B) {
	res, err := EventThroughput(b.Context(), b.TempDir(), EventConfig{Events: max(b.N, 100), Publishers: 32, Workers: 64})
	require.NoError(b, err)
	require.EqualValues(b, max(b.N, 100), res.Handled, "every event handled once")
	b.ReportMetric(res.PerSecond, "events/s")
	b.ReportMetric(0, "ns/op")
}

func TestEventThroughput_handles_every_event_once(t *testing.T) {
	res, err := EventThroughput(t.Context(), t.TempDir(), EventConfig{Events: 500, Publishers: 8, Workers: 16})
	require.NoError(t, err)
	assert.EqualValues(t, 500, res.Handled)
	assert.Positive(t, res.PerSecond)
}
