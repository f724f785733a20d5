// Package deadletter handles events whose retries ran out. It keeps every
// dead event for inspection and replay, and turns it into an outcome so no
// job is left hanging: a dead page becomes a failed page (the job still
// finishes, with a placeholder), a dead job becomes ocr.job.failed.
package deadletter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Source is the event source of events deadletter emits.
const Source = "/ocrflow/deadletter"

// Sink is the dead-letter stage.
type Sink struct {
	blobs  scratch.Store
	traces content.FailureRecorder
	recipe content.Recipe
	log    *slog.Logger
}

// New returns the dead-letter stage. traces, when not nil, keeps the
// content store's trace of a job that dies here, keyed by recipe — the
// same trace a job that fails in convert or finalize leaves.
func New(blobs scratch.Store, traces content.FailureRecorder, recipe content.Recipe, log *slog.Logger) *Sink {
	return &Sink{blobs: blobs, traces: traces, recipe: recipe, log: log}
}

// Reason returns the dead letter's reason from Knative's extensions:
// knativeerrorcode (last HTTP status), knativeerrordest (the failing URL)
// and knativeerrordata (base64 of the last response body).
func Reason(e event.Event) (code int, dest, reason string) {
	ext := e.Extensions()
	switch v := ext[events.ExtErrorCode].(type) {
	case int32:
		code = int(v)
	case string:
		code, _ = strconv.Atoi(v)
	}
	dest, _ = ext[events.ExtErrorDest].(string)
	if data, ok := ext[events.ExtErrorData].(string); ok {
		if b, err := base64.StdEncoding.DecodeString(data); err == nil {
			reason = string(b)
		} else {
			reason = data
		}
	}
	if reason == "" {
		reason = "no response body"
	}
	return code, dest, reason
}

// Handle keeps the dead event and replies the outcome it implies.
func (s *Sink) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	code, dest, reason := Reason(e)
	msg := fmt.Sprintf("retries exhausted (last status %d at %s): %s", code, dest, reason)
	s.log.WarnContext(ctx, "dead letter", "type", e.Type(), "id", e.ID(), "reason", msg)
	rec := scratch.DeadLetter{ReceivedAt: time.Now().UTC(), Code: code, Dest: dest, Reason: reason, Event: e}
	if _, err := json.Marshal(e); err != nil {
		// Data that does not match its content type (malformed JSON) cannot
		// be kept as is; keep its bytes, base64-encoded, instead of losing
		// the dead letter.
		raw := e.Clone()
		raw.DataEncoded = e.Data()
		raw.DataBase64 = true
		raw.SetDataContentType("application/octet-stream")
		rec.Event = raw
	}
	if err := scratch.PutJSON(ctx, s.blobs, scratch.DeadLetterKey(e.ID()), rec); err != nil {
		return nil, err
	}
	switch e.Type() {
	case events.TypePageRendered:
		return s.deadPage(ctx, e, msg)
	case events.TypeJob, events.TypeConvertContinue, events.TypePageRecognized:
		job, _ := e.Extensions()[events.ExtJob].(string)
		if job == "" && e.Type() == events.TypeJob {
			job = e.ID()
		}
		if job == "" {
			return nil, nil
		}
		return s.deadJob(ctx, e, job, msg)
	default:
		return nil, nil
	}
}

func (s *Sink) deadPage(ctx context.Context, e event.Event, msg string) (*event.Event, error) {
	var p events.PageRendered
	if err := events.Decode(e, &p); err != nil || p.JobID == "" {
		return nil, nil // kept above; nothing to account it to
	}
	rec, done, err := scratch.GetRecord(ctx, s.blobs, p.JobID, p.Page)
	if err != nil {
		return nil, err
	}
	if !done {
		rec = scratch.PageRecord{
			Page: p.Page, Status: events.PageFailed, Route: p.Route,
			Reason: failure.Reason(errors.New(msg)), EventID: e.ID(),
		}
		if err := scratch.PutRecord(ctx, s.blobs, p.JobID, rec); err != nil {
			return nil, err
		}
	}
	return scratch.RecognizedEvent(&e, Source, p.JobID, p.Pages, rec)
}

// deadJob ends job with ocr.job.failed, after leaving the content store's
// trace when this dead letter is the first word on the job's end.
func (s *Sink) deadJob(ctx context.Context, e event.Event, job, msg string) (*event.Event, error) {
	_, ended, err := scratch.Ended(ctx, s.blobs, job, e.ID())
	if err != nil {
		return nil, err
	}
	cause := errors.New(msg)
	ev, err := events.Failed(&e, Source, job, "", string(failure.TypeTransient), failure.Text(cause), 0)
	if err != nil {
		return nil, err
	}
	o, ok, err := scratch.OriginOf(ctx, s.blobs, job)
	if err != nil {
		return nil, err
	}
	if ok && !ended && s.traces != nil {
		err := content.RecordFailure(ctx, s.traces, content.Failure{
			JobID: job, ContentID: o.ContentID, TenantID: o.TenantID, OwnerID: o.OwnerID,
			IdempotencyKey: s.recipe.Key(o.ContentID, o.Resolution),
			ErrorType:      string(failure.TypeTransient), Message: failure.Text(cause),
		}, s.log)
		if err != nil {
			return nil, err
		}
	}
	return scratch.End(ctx, s.blobs, job, e, ev)
}
