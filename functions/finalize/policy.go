package finalize

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// maxPageErrorRate is the job's page-failure policy: its
// max_page_error_rate hint, else the configured rate.
func (s *Finalizer) maxPageErrorRate(m scratch.Manifest) float64 {
	if v, ok := m.Hints[job.HintMaxPageErrorRate]; ok {
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			return x
		}
	}
	return s.cfg.MaxPageErrorRate
}

// overRate returns the job's failed pages and whether they are more than
// its policy allows (at or below the rate the job completes).
func (s *Finalizer) overRate(m scratch.Manifest, recs map[int]scratch.PageRecord) ([]events.FailedPage, bool) {
	var failed []events.FailedPage
	for _, n := range m.Pages {
		if r := recs[n]; r.Status != events.PageOK {
			failed = append(failed, events.FailedPage{Page: n, Route: r.Route, Reason: r.Reason})
		}
	}
	if len(failed) == 0 || len(m.Pages) == 0 {
		return failed, false
	}
	return failed, float64(len(failed))/float64(len(m.Pages)) > s.maxPageErrorRate(m)
}

// failPages ends the job with ocr.job.failed (error_type pages_failed):
// more of its pages failed than its policy allows. The content store keeps
// the same trace as for any failed job.
func (s *Finalizer) failPages(ctx context.Context, e event.Event, m scratch.Manifest, failed []events.FailedPage) (*event.Event, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d pages failed, more than max_page_error_rate %g allows:", len(failed), len(m.Pages), s.maxPageErrorRate(m))
	for _, f := range failed {
		fmt.Fprintf(&b, " page %d: %s;", f.Page, f.Reason)
	}
	msg := failure.Message(fmt.Errorf("%s", strings.TrimSuffix(b.String(), ";")), failure.MaxMessage)
	ev, err := events.New(&e, events.FailedID(m.JobID), events.TypeJobFailed, Source, 0, m.JobID, events.JobFailed{
		JobID: m.JobID, ContentID: m.ContentID, ErrorType: events.ErrorTypePagesFailed, Message: msg, FailedPages: failed,
	})
	if err != nil {
		return nil, err
	}
	if again, ended, err := scratch.Ended(ctx, s.blobs, m.JobID, e.ID()); err != nil || ended {
		return again, err
	}
	err = content.RecordFailure(ctx, s.store, content.Failure{
		JobID: m.JobID, ContentID: m.ContentID, TenantID: m.TenantID, OwnerID: m.OwnerID,
		IdempotencyKey: s.recipe.Key(m.ContentID, m.Hints["resolution"]),
		ErrorType:      events.ErrorTypePagesFailed, Message: msg,
	}, s.log)
	if err != nil {
		return nil, err
	}
	s.log.WarnContext(ctx, "job failed: too many pages failed", "job", m.JobID, "failed_pages", len(failed), "pages", len(m.Pages))
	return scratch.End(ctx, s.blobs, m.JobID, e, ev)
}

// throttle decides, per job, when this process sends a progress event:
// at most one per interval, unless pages more pages finished since the
// last one. Its memory is bounded: a job is forgotten when it completes
// here, and any job not heard of for ten intervals is forgotten too.
type throttle struct {
	interval time.Duration
	pages    int

	mu   sync.Mutex
	last map[string]sent
}

type sent struct {
	at   time.Time
	done int
}

func newThrottle(interval time.Duration, pages int) *throttle {
	return &throttle{interval: interval, pages: pages, last: map[string]sent{}}
}

// due reports whether a progress event for job at done pages goes out now,
// and if so remembers it.
func (t *throttle) due(job string, done int, now time.Time) bool {
	if t.interval <= 0 && t.pages <= 0 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, seen := t.last[job]
	ok := !seen ||
		(t.interval > 0 && now.Sub(prev.at) >= t.interval) ||
		(t.pages > 0 && done >= prev.done+t.pages)
	if !ok || done <= prev.done && seen {
		return false
	}
	t.last[job] = sent{at: now, done: done}
	if t.interval > 0 && len(t.last) > 1024 {
		for j, v := range t.last {
			if now.Sub(v.at) > 10*t.interval {
				delete(t.last, j)
			}
		}
	}
	return true
}

// forget drops what is remembered of job.
func (t *throttle) forget(job string) {
	t.mu.Lock()
	delete(t.last, job)
	t.mu.Unlock()
}
