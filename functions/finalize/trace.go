package finalize

import (
	"context"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// recordFailure leaves the content store's trace of a job that failed
// without retry (content.RecordFailure), using what the job's durable
// state says about its source. Without it there is nothing to attach a
// trace to.
func (s *Finalizer) recordFailure(ctx context.Context, job string, cause error) error {
	o, ok, err := scratch.OriginOf(ctx, s.blobs, job)
	if err != nil || !ok {
		return err
	}
	return content.RecordFailure(ctx, s.store, content.Failure{
		JobID: job, ContentID: o.ContentID, TenantID: o.TenantID, OwnerID: o.OwnerID,
		IdempotencyKey: s.recipe.Key(o.ContentID, o.Resolution),
		ErrorType:      string(failure.Classify(cause)), Message: failure.Text(cause),
	}, s.log)
}
