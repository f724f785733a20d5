package app_test

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/events"
)

// journal sorts the lifecycle events a test follows by job.
type journal struct {
	events <-chan event.Event
	seen   map[string][]event.Event
}

func newJournal(lifecycle <-chan event.Event) *journal {
	return &journal{events: lifecycle, seen: map[string][]event.Event{}}
}

// until returns job id's lifecycle events, in order, up to its terminal
// one, failing t if that does not arrive within the time given.
func (j *journal) until(t testing.TB, id string, within time.Duration) []event.Event {
	t.Helper()
	timeout := time.After(within)
	for {
		if evs := j.seen[id]; len(evs) > 0 && events.Terminal(evs[len(evs)-1].Type()) {
			return evs
		}
		select {
		case e, ok := <-j.events:
			require.True(t, ok, "lifecycle stream closed while waiting for %s", id)
			job, _ := e.Extensions()[events.ExtJob].(string)
			j.seen[job] = append(j.seen[job], e)
		case <-timeout:
			require.Failf(t, "job did not end", "job %s did not end within %s; saw %v", id, within, types(j.seen[id]))
		}
	}
}
