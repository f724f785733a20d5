package convert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// reuse completes the job at once when the content store already holds a
// finished result with the job's idempotency key (content.Reuser) and the
// job does not say force and is no replay. handled is true when the job needs no
// conversion: it was completed here (reply is ocr.job.completed with
// reused: true, recorded through scratch.End so the job still ends exactly
// once). e is the event being handled.
func (s *Converter) reuse(ctx context.Context, e, parent event.Event, j job.Job) (reply *event.Event, handled bool, err error) {
	r, ok := s.fetcher.(content.Reuser)
	if !ok || j.Hints.Force || j.Hints.ReplayOf != "" || j.ContentID == "" {
		return nil, false, nil // a replay corrects the result it would reuse
	}
	key := s.cfg.Recipe.Key(j.ContentID, j.Hints.Resolution)
	// The store looks for every output the job stores: say which.
	j.Hints.OutputFormat = strings.Join(j.OutputsOr(s.outputsDefault()), ",")
	d, found, err := r.Existing(ctx, j, key)
	if err != nil || !found {
		return nil, false, err
	}
	ev, err := events.New(&parent, events.CompletedID(j.ID), events.TypeJobCompleted, Source, 0, j.ID, events.JobCompleted{
		JobID: j.ID, ContentID: j.ContentID, DerivedContentID: d.Ref, DerivedContents: d.Refs, PageCount: d.PageCount,
		PagesByRoute: d.PagesByRoute, Reused: true,
	})
	if err != nil {
		return nil, false, err
	}
	s.log.InfoContext(ctx, "reusing existing result", "job", j.ID, "content", j.ContentID, "derived", d.Ref, "key", key)
	reply, err = scratch.End(ctx, s.blobs, j.ID, e, ev)
	return reply, err == nil, err
}

// outputsDefault is what a job stores when it does not say.
func (s *Converter) outputsDefault() []string {
	if len(s.cfg.Outputs) == 0 {
		return []string{job.OutputMarkdown}
	}
	return s.cfg.Outputs
}

// recordFailure leaves the content store's trace of a job that failed
// without retry (content.RecordFailure).
func (s *Converter) recordFailure(ctx context.Context, j job.Job, cause error) error {
	return content.RecordFailure(ctx, s.fetcher, content.Failure{
		JobID: j.ID, ContentID: j.ContentID, TenantID: j.TenantID, OwnerID: j.OwnerID,
		IdempotencyKey: s.cfg.Recipe.Key(j.ContentID, j.Hints.Resolution),
		ErrorType:      string(failure.Classify(cause)), Message: failure.Text(cause),
	}, s.log)
}

// previous returns the finished (ok) pages of the job j replays, keyed by
// page number, when j is a replay (hint replay_of) of a job converted from
// the same document (same page count); nil otherwise. Those pages are taken
// over, so the engine never sees them again.
func (s *Converter) previous(ctx context.Context, j job.Job, totalPages int) (map[int]scratch.PageRecord, error) {
	if j.Hints.ReplayOf == "" {
		return nil, nil
	}
	var m scratch.Manifest
	err := scratch.GetJSON(ctx, s.blobs, scratch.ManifestKey(j.Hints.ReplayOf), &m)
	if errors.Is(err, scratch.ErrNotFound) {
		return nil, nil // it never got as far as its pages
	}
	if err != nil {
		return nil, err
	}
	if m.TotalPages != totalPages {
		s.log.WarnContext(ctx, "replayed job saw another document; converting every page", "job", j.ID, "replay_of", j.Hints.ReplayOf,
			"pages", totalPages, "replayed_pages", m.TotalPages)
		return nil, nil
	}
	recs, err := scratch.Records(ctx, s.blobs, j.Hints.ReplayOf)
	if err != nil {
		return nil, err
	}
	for n, r := range recs {
		if r.Status != events.PageOK {
			delete(recs, n)
		}
	}
	return recs, nil
}

// takeOver records a page the replayed job finished as done in job j (its
// markdown stays where it is: the key names the replayed job) and reports it
// straight to finalize.
func (s *Converter) takeOver(ctx context.Context, parent event.Event, j job.Job, rec scratch.PageRecord, total int) error {
	rec.EventID, rec.DoneAt = events.PageRenderedID(j.ID, rec.Page), time.Time{}
	if err := scratch.PutRecord(ctx, s.blobs, j.ID, rec); err != nil {
		return err
	}
	ev, err := scratch.RecognizedEvent(&parent, Source, j.ID, total, rec)
	if err != nil {
		return err
	}
	if err := s.send.Send(ctx, *ev); err != nil {
		return fmt.Errorf("send page %d taken over: %w", rec.Page, err)
	}
	return nil
}
