package convert

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// reuse completes the job at once when the content store already holds a
// finished result with the job's idempotency key (content.Reuser) and the
// job does not say force. handled is true when the job needs no
// conversion: it was completed here (reply is ocr.job.completed with
// reused: true, recorded through scratch.End so the job still ends exactly
// once). e is the event being handled.
func (s *Converter) reuse(ctx context.Context, e, parent event.Event, j job.Job) (reply *event.Event, handled bool, err error) {
	r, ok := s.fetcher.(content.Reuser)
	if !ok || j.Hints.Force || j.ContentID == "" {
		return nil, false, nil
	}
	key := s.cfg.Recipe.Key(j.ContentID, j.Hints.Resolution)
	d, found, err := r.Existing(ctx, j, key)
	if err != nil || !found {
		return nil, false, err
	}
	ev, err := events.New(&parent, events.CompletedID(j.ID), events.TypeJobCompleted, Source, 0, j.ID, events.JobCompleted{
		JobID: j.ID, ContentID: j.ContentID, DerivedContentID: d.Ref, PageCount: d.PageCount,
		PagesByRoute: d.PagesByRoute, Reused: true,
	})
	if err != nil {
		return nil, false, err
	}
	s.log.Info("reusing existing result", "job", j.ID, "content", j.ContentID, "derived", d.Ref, "key", key)
	reply, err = scratch.End(ctx, s.blobs, j.ID, e, ev)
	return reply, err == nil, err
}

// recordFailure leaves the content store's trace of a job that failed
// without retry (content.FailureRecorder). A transient error is returned
// so the job is retried rather than left without its trace; any other is
// logged.
func (s *Converter) recordFailure(ctx context.Context, j job.Job, cause error) error {
	r, ok := s.fetcher.(content.FailureRecorder)
	if !ok || j.ID == "" || j.ContentID == "" {
		return nil
	}
	err := r.RecordFailure(ctx, content.Failure{
		JobID: j.ID, ContentID: j.ContentID, TenantID: j.TenantID, OwnerID: j.OwnerID,
		IdempotencyKey: s.cfg.Recipe.Key(j.ContentID, j.Hints.Resolution),
		ErrorType:      string(failure.Classify(cause)), Message: failure.Text(cause),
	})
	if err != nil && failure.Retryable(err) {
		return err
	}
	if err != nil {
		s.log.Warn("cannot record the failure in the content store", "job", j.ID, "error", err)
	}
	return nil
}
