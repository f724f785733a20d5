package finalize_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/finalize"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// metered is a scratch store that counts the listings, reads and
// existence checks made through it.
type metered struct {
	scratch.Store
	lists, gets, exists atomic.Int64
}

func (m *metered) List(ctx context.Context, prefix string) ([]string, error) {
	m.lists.Add(1)
	return m.Store.List(ctx, prefix)
}

func (m *metered) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	m.gets.Add(1)
	return m.Store.Get(ctx, key)
}

func (m *metered) Exists(ctx context.Context, key string) (bool, error) {
	m.exists.Add(1)
	return m.Store.Exists(ctx, key)
}

// TestFinalize_a_page_event_costs_constant_store_reads: counting a
// job's finished pages must not list or read every page on every event
// (O(pages²) per job, and memory that grows with the page count). The
// events of a 300-page job, finished out of order and shared by two
// instances, cost each instance one listing to start, one per progress
// event, one existence check per page it did not handle itself, and a
// constant number of reads per event; the job still completes exactly
// once with every page.
func TestFinalize_a_page_event_costs_constant_store_reads(t *testing.T) {
	const pages = 300
	ns := make([]int, pages)
	for i := range ns {
		ns[i] = i + 1
	}
	j := newJob(t, "job-tally", ns)
	m := &metered{Store: j.store}
	st := &storer{}
	cfg := finalize.Config{Recipe: recipe, MaxPageErrorRate: 1, ProgressInterval: time.Hour, ProgressPages: 100}
	instances := []*finalize.Finalizer{
		finalize.New(cfg, m, st, slog.New(slog.DiscardHandler)),
		finalize.New(cfg, m, st, slog.New(slog.DiscardHandler)),
	}
	// Pages finish in blocks of ten, each block back to front, and the
	// two instances take turns.
	var order []int
	for b := 0; b < pages; b += 10 {
		for i := b + 10; i > b; i-- {
			order = append(order, i)
		}
	}
	var completions, progress int
	var done *event.Event
	for i, n := range order {
		ev := j.finish(t, okPage(n, fmt.Sprintf("text-of-page-%03d", n)))
		before := m.gets.Load()
		reply, err := instances[i%2].Handle(t.Context(), ev)
		require.NoError(t, err, "page %d", n)
		if i < len(order)-1 {
			// The outcome record, and the manifest the first time.
			assert.LessOrEqual(t, m.gets.Load()-before, int64(2), "reads for page %d", n)
		}
		if reply == nil {
			continue
		}
		switch reply.Type() {
		case events.TypeJobCompleted:
			completions++
			done = reply
		case events.TypeJobProgress:
			progress++
		}
	}
	require.Equal(t, 1, completions, "the job completes once")
	require.Len(t, st.stored(), 1)
	assert.Equal(t, j.id, completed(t, done).JobID)
	md, last := string(st.stored()[0].Markdown), -1
	for n := 1; n <= pages; n++ {
		at := strings.Index(md, fmt.Sprintf("text-of-page-%03d", n))
		require.Greater(t, at, last, "page %d is in the document, after page %d", n, n-1)
		last = at
	}
	// Two first listings, one per progress event, one in the assembly.
	assert.LessOrEqual(t, m.lists.Load(), int64(2+progress+2), "listings (progress events: %d)", progress)
	// At most one check per page an instance did not see, and one that
	// finds the next page missing, per event: linear in the page count
	// (a check of every page per event would be 45,000).
	assert.LessOrEqual(t, m.exists.Load(), int64(3*pages), "existence checks")
}
