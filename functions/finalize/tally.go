package finalize

import (
	"context"
	"errors"
	"sync"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// maxTallies bounds how many jobs a process keeps a tally of; the oldest
// goes first (a job another instance finished is never heard of again).
const maxTallies = 256

// tallies is what this process knows of each running job's finished
// pages, so that handling one ocr.page.recognized costs a constant number
// of store reads. Counting from a listing of the job's page keys on every
// event costs O(pages) per page — O(pages²) per job — and its garbage
// grew the live heap with the page count (docs/performance.md, "Memory").
//
// A tally only ever holds pages known to be finished: the page the event
// names (recognize writes its record before it replies), pages whose
// record was seen. It may know fewer than are finished — pages another
// instance handled — and finds those in order with one Exists each.
type tallies struct {
	mu    sync.Mutex
	jobs  map[string]*tally
	order []string // oldest first
}

// tally is one job's.
type tally struct {
	mu  sync.Mutex
	job string
	// m is the job's manifest: created once, never changed.
	m scratch.Manifest
	// want holds m.Pages.
	want map[int]bool
	// done marks the finished pages among m.Pages.
	done map[int]bool
	// next indexes m.Pages: every page before it is finished.
	next int
}

func newTallies() *tallies { return &tallies{jobs: map[string]*tally{}} }

// of returns job's tally, reading its manifest and listing its finished
// pages once when the process has none.
func (ts *tallies) of(ctx context.Context, s scratch.Store, job string) (*tally, error) {
	ts.mu.Lock()
	t, ok := ts.jobs[job]
	ts.mu.Unlock()
	if ok {
		return t, nil
	}
	t = &tally{job: job, done: map[int]bool{}, want: map[int]bool{}}
	if err := scratch.GetJSON(ctx, s, scratch.ManifestKey(job), &t.m); err != nil {
		if errors.Is(err, scratch.ErrNotFound) {
			return nil, failure.Permanent("job %s has no manifest: its scratch state is gone", job)
		}
		return nil, err
	}
	for _, p := range t.m.Pages {
		t.want[p] = true
	}
	if _, err := t.list(ctx, s); err != nil {
		return nil, err
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if prev, ok := ts.jobs[job]; ok { // a concurrent event made one first
		return prev, nil
	}
	ts.jobs[job] = t
	ts.order = append(ts.order, job)
	for len(ts.order) > maxTallies {
		delete(ts.jobs, ts.order[0])
		ts.order = ts.order[1:]
	}
	return t, nil
}

// forget drops job's tally (the job is complete).
func (ts *tallies) forget(job string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.jobs, job)
	for i, j := range ts.order {
		if j == job {
			ts.order = append(ts.order[:i], ts.order[i+1:]...)
			break
		}
	}
}

// mark records page n as finished (ignored unless it is one of the job's).
// The caller holds t.mu.
func (t *tally) mark(n int) {
	if t.want[n] {
		t.done[n] = true
	}
}

// list learns every finished page from a listing of the job's page keys
// and returns how many of the job's pages are finished.
func (t *tally) list(ctx context.Context, s scratch.Store) (int, error) {
	finished, err := scratch.DonePages(ctx, s, t.job)
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for n := range finished {
		t.mark(n)
	}
	return len(t.done), nil
}

// finished marks page n and returns how many of the job's pages are known
// to be finished, and whether that is all of them: from the first page
// not yet known, it asks the store for each page's record in turn and
// stops at the first that is missing.
func (t *tally) finished(ctx context.Context, s scratch.Store, n int) (done int, all bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mark(n)
	for t.next < len(t.m.Pages) {
		p := t.m.Pages[t.next]
		if !t.done[p] {
			ok, err := s.Exists(ctx, scratch.PageKey(t.job, p, "json"))
			if err != nil {
				return 0, false, err
			}
			if !ok {
				break
			}
			t.done[p] = true
		}
		t.next++
	}
	return len(t.done), t.next == len(t.m.Pages), nil
}
