package content

import (
	"context"
	"log/slog"
	"strings"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
)

// PipelineVersion versions the pipeline's output. It is part of the
// idempotency key: bump it when a change makes earlier results worth
// redoing, and existing derived contents stop being reused.
const PipelineVersion = "1"

// DefaultMode names the recognition mode when neither the job (hint
// resolution/mode) nor the engine chooses one.
const DefaultMode = "default"

// IdempotencyKey identifies a result by what made it: the source content,
// the pipeline version, the model and the mode. A content store that finds
// a finished result with the same key can reuse it instead of redoing the
// work (unless the job says force).
func IdempotencyKey(contentID, pipelineVersion, model, mode string) string {
	if mode == "" {
		mode = DefaultMode
	}
	clean := strings.NewReplacer("|", "_").Replace
	return strings.Join([]string{"ocr", clean(contentID), "v" + clean(pipelineVersion), clean(model), clean(mode)}, "|")
}

// Recipe is what makes a result besides its source: the stages that key
// and describe results (convert, finalize) get the same Recipe from the
// pipeline's wiring.
type Recipe struct {
	// PipelineVersion is PipelineVersion unless a test says otherwise.
	PipelineVersion string
	// Engine is the recognition engine's name; Model the model it runs
	// (the engine name when it has no separate model).
	Engine, Model string
	// Mode is the default recognition mode (DefaultMode when empty); a
	// job's resolution/mode hint overrides it.
	Mode string
}

// ModeFor returns the mode a job runs in: its hint, else the default.
func (r Recipe) ModeFor(hint string) string {
	switch {
	case hint != "":
		return hint
	case r.Mode != "":
		return r.Mode
	}
	return DefaultMode
}

// Key returns the idempotency key of contentID's result made with hint as
// the job's mode hint.
func (r Recipe) Key(contentID, hint string) string {
	return IdempotencyKey(contentID, r.PipelineVersion, r.Model, r.ModeFor(hint))
}

// Derived is a finished result already in the content store.
type Derived struct {
	// Ref is what ocr.job.completed reports as derived_content_id: the
	// markdown's reference, or the first output's.
	Ref string
	// Refs maps each output found to its reference.
	Refs map[string]string
	// PageCount and PagesByRoute describe the stored result, when known.
	PageCount    int
	PagesByRoute map[string]int
}

// Reuser is an optional content-store capability: find a finished result
// with the given idempotency key for the job's source, with every output
// the job asks for (j.OutputsOr of the markdown alone: convert resolves
// OCR_OUTPUTS into the job's output_format hint before asking) — an output
// an earlier job recorded as unavailable for this source is not waited
// for. ok is false when there is none. Like Fetch it checks the job's
// tenant and owner against the source's and fails the same way when they
// differ.
type Reuser interface {
	Existing(ctx context.Context, j job.Job, key string) (d Derived, ok bool, err error)
}

// Failure describes a job that failed without retry, for the trace a
// content store may keep next to the source.
type Failure struct {
	JobID     string
	ContentID string
	TenantID  string
	OwnerID   string
	// IdempotencyKey is the key the result would have had ("" if unknown).
	IdempotencyKey string
	// ErrorType is validation or permanent.
	ErrorType string
	Message   string
}

// FailureRecorder is an optional content-store capability: leave a
// visible trace of a job that failed for good. Recording the same job
// twice leaves one trace. A store skips (returns nil) where no trace can
// or may be written, e.g. a source that does not exist or belongs to
// another tenant; errors are worth retrying.
type FailureRecorder interface {
	RecordFailure(ctx context.Context, f Failure) error
}

// RecordFailure leaves the trace of a job that failed for good in store,
// when the store keeps traces (FailureRecorder). A transient error is
// returned, so the job is retried rather than left without its trace; any
// other is only logged: the job's failure stands either way.
func RecordFailure(ctx context.Context, store any, f Failure, log *slog.Logger) error {
	r, ok := store.(FailureRecorder)
	if !ok || f.JobID == "" || f.ContentID == "" {
		return nil
	}
	err := r.RecordFailure(ctx, f)
	if err != nil && failure.Retryable(err) {
		return err
	}
	if err != nil && log != nil {
		log.WarnContext(ctx, "cannot record the failure in the content store", "job", f.JobID, "error", err)
	}
	return nil
}
