package finalize

import (
	"context"
	"errors"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// recordFailure leaves the content store's trace of a job that failed
// without retry (content.FailureRecorder), using what the job's manifest
// says about its source. Without a manifest there is nothing to attach a
// trace to. A transient error is returned so the job is retried rather
// than left without its trace; any other is logged.
func (s *Finalizer) recordFailure(ctx context.Context, job string, cause error) error {
	r, ok := s.store.(content.FailureRecorder)
	if !ok {
		return nil
	}
	var m scratch.Manifest
	if err := scratch.GetJSON(ctx, s.blobs, scratch.ManifestKey(job), &m); err != nil {
		if errors.Is(err, scratch.ErrNotFound) {
			return nil
		}
		return err
	}
	err := r.RecordFailure(ctx, content.Failure{
		JobID: job, ContentID: m.ContentID, TenantID: m.TenantID, OwnerID: m.OwnerID,
		IdempotencyKey: s.recipe.Key(m.ContentID, m.Hints["resolution"]),
		ErrorType:      string(failure.Classify(cause)), Message: failure.Text(cause),
	})
	if err != nil && failure.Retryable(err) {
		return err
	}
	if err != nil {
		s.log.WarnContext(ctx, "cannot record the failure in the content store", "job", job, "error", err)
	}
	return nil
}
