package stage_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/stage"
)

func TestGate_allowed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		workers int
		demand  func() int
		want    int
	}{
		{name: "workers_without_demand", workers: 4, want: 4},
		{name: "workers_at_least_one", workers: 0, want: 1},
		{name: "demand_below_workers", workers: 576, demand: func() int { return 10 }, want: 10},
		{name: "demand_above_workers", workers: 8, demand: func() int { return 100 }, want: 8},
		{name: "demand_at_least_one", workers: 8, demand: func() int { return 0 }, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := stage.NewGate(stage.Stage{Workers: tc.workers, Demand: tc.demand})
			assert.Equal(t, tc.want, g.Allowed())
			n := 0
			for g.TryAcquire() {
				n++
			}
			assert.Equal(t, tc.want, n, "places taken")
		})
	}
}

func TestGate_waits_for_a_release_or_more_demand(t *testing.T) {
	var demand atomic.Int64
	demand.Store(2)
	g := stage.NewGate(stage.Stage{Workers: 10, Demand: func() int { return int(demand.Load()) }})
	require.True(t, g.TryAcquire())
	require.True(t, g.TryAcquire())
	require.False(t, g.TryAcquire(), "demand is 2")

	stop := make(chan struct{})
	got := make(chan bool, 3)
	for range 3 {
		go func() { got <- g.Acquire(stop) }()
	}
	select {
	case <-got:
		require.FailNow(t, "a waiter got a place beyond the demand")
	default:
	}

	g.Release() // one place frees: one waiter takes it
	assert.True(t, receive(t, got), "after a release")

	demand.Store(3) // the limit grew by one: another waiter sees it within DemandPoll
	assert.True(t, receive(t, got), "after the demand grew")

	close(stop) // the last one gives up
	assert.False(t, receive(t, got), "after stop")
}

func receive(t *testing.T, ch <-chan bool) bool {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		require.FailNow(t, "no waiter moved")
		return false
	}
}
