// Package events is the event contract of ocrflow: every CloudEvent type the
// pipeline consumes or emits, its payload, and how its id is derived.
//
// Payloads are references only (blob keys, never image bytes): NATS caps a
// message at 1 MiB. Ids are deterministic (<job>-p<n>-rendered,
// <job>-completed, ...) so a redelivered or replayed event is recognised as
// the same event by brokers that deduplicate and by consumers.
package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Event types.
const (
	// TypeJob is the simple-process job envelope (input).
	TypeJob = "simpleprocess.job"
	// TypePageRendered fans a page out from convert to recognize.
	TypePageRendered = "ocr.page.rendered"
	// TypePageRecognized reports one finished (or failed) page to finalize.
	TypePageRecognized = "ocr.page.recognized"
	// TypeJobStarted is emitted once per job when its pages are known.
	TypeJobStarted = "ocr.job.started"
	// TypeJobProgress reports pages done / total while a job runs.
	TypeJobProgress = "ocr.job.progress"
	// TypeJobCompleted is the terminal success event of a job.
	TypeJobCompleted = "ocr.job.completed"
	// TypeJobFailed is the terminal failure event of a job.
	TypeJobFailed = "ocr.job.failed"
	// TypeConvertContinue hands the rest of a long document from one
	// convert delivery to the next, so no delivery outlives its timeout.
	TypeConvertContinue = "ocr.convert.continue"
)

// UoW is the unit-of-work name that selects ocrflow in a simple-process job.
const UoW = "ocr"

// Extension attribute names (lowercase letters only, per the spec).
const (
	ExtUoW         = "uow"
	ExtJob         = "ocrjob"
	ExtPage        = "ocrpage"
	ExtTraceparent = "traceparent"
	// Knative's dead-letter extensions.
	ExtErrorCode = "knativeerrorcode"
	ExtErrorDest = "knativeerrordest"
	ExtErrorData = "knativeerrordata"
)

// Terminal reports whether t ends a job's lifecycle.
func Terminal(t string) bool { return t == TypeJobCompleted || t == TypeJobFailed }

// Lifecycle reports whether t is a lifecycle event meant for the platform.
func Lifecycle(t string) bool {
	switch t {
	case TypeJobStarted, TypeJobProgress, TypeJobCompleted, TypeJobFailed:
		return true
	}
	return false
}

// Route says how a page is recognized.
type Route string

// Page routes.
const (
	// RouteOCR pages go to the recognition engine.
	RouteOCR Route = "ocr"
	// RouteText pages carry a trustworthy text layer and skip the engine.
	RouteText Route = "text"
)

// PageRendered is the payload of ocr.page.rendered.
type PageRendered struct {
	JobID string `json:"job_id"`
	// Page is 1-based.
	Page  int   `json:"page"`
	Pages int   `json:"pages"`
	Route Route `json:"route"`
	// ImageKey is the blob key of the page image (route ocr).
	ImageKey string `json:"image_key,omitempty"`
	// TextKey is the blob key of the page's markdown (route text).
	TextKey string `json:"text_key,omitempty"`
	Width   int    `json:"width,omitempty"`
	Height  int    `json:"height,omitempty"`
	// TimeoutSeconds is the job's per-page timeout hint (0 = default).
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
	// TextScore rates the page's own text layer (0–1); it decided Route.
	TextScore float64 `json:"text_score"`
}

// PageStatus is the outcome of one page.
type PageStatus string

// Page outcomes.
const (
	PageOK     PageStatus = "ok"
	PageFailed PageStatus = "failed"
)

// PageRecognized is the payload of ocr.page.recognized.
type PageRecognized struct {
	JobID  string     `json:"job_id"`
	Page   int        `json:"page"`
	Pages  int        `json:"pages"`
	Status PageStatus `json:"status"`
	Route  Route      `json:"route,omitempty"`
	// Engine is the engine that produced the page (engine_used).
	Engine string `json:"engine,omitempty"`
	// Reason explains a failed page (error type and message).
	Reason string `json:"reason,omitempty"`
	// ResultKey is the blob key of the page's markdown.
	ResultKey string `json:"result_key,omitempty"`
}

// JobStarted is the payload of ocr.job.started.
type JobStarted struct {
	JobID        string `json:"job_id"`
	ContentID    string `json:"content_id,omitempty"`
	TenantID     string `json:"tenant_id,omitempty"`
	SourceFormat string `json:"source_format"`
	Pages        int    `json:"pages"`
	Timestamp    string `json:"timestamp"`
}

// ConvertContinue is the payload of ocr.convert.continue: the job event as
// it arrived (structured CloudEvents JSON) and where in its page list
// convert goes on.
type ConvertContinue struct {
	JobID string `json:"job_id"`
	// Next is the 0-based index into the job's page list (the manifest's
	// Pages) of the first page still to convert.
	Next int `json:"next"`
	// Job is the original simpleprocess.job event.
	Job json.RawMessage `json:"job"`
}

// JobProgress is the payload of ocr.job.progress.
type JobProgress struct {
	JobID          string `json:"job_id"`
	PagesCompleted int    `json:"pages_completed"`
	TotalPages     int    `json:"total_pages"`
	Percent        int    `json:"percent_complete"`
}

// JobCompleted is the payload of ocr.job.completed.
type JobCompleted struct {
	JobID     string `json:"job_id"`
	ContentID string `json:"content_id,omitempty"`
	// DerivedContentID identifies the stored markdown in the content store
	// (a derived content id, or a file path for the directory store).
	DerivedContentID string         `json:"derived_content_id"`
	PageCount        int            `json:"page_count"`
	PagesByRoute     map[string]int `json:"pages_by_route"`
	// EngineUsed maps page number to the engine that answered it.
	EngineUsed       map[string]string `json:"engine_used,omitempty"`
	FailedPages      []FailedPage      `json:"failed_pages,omitempty"`
	ProcessingTimeMS int64             `json:"processing_time_ms"`
	Reused           bool              `json:"reused,omitempty"`
}

// FailedPage names a page that is a placeholder in the result.
type FailedPage struct {
	Page   int    `json:"page"`
	Reason string `json:"reason"`
}

// JobFailed is the payload of ocr.job.failed.
type JobFailed struct {
	JobID      string `json:"job_id"`
	ContentID  string `json:"content_id,omitempty"`
	ErrorType  string `json:"error_type"`
	Message    string `json:"error_message"`
	RetryCount int    `json:"retry_count"`
}

// ID helpers: deterministic event ids.

// PageRenderedID is the id of page n's ocr.page.rendered event.
func PageRenderedID(job string, n int) string { return job + "-p" + strconv.Itoa(n) + "-rendered" }

// PageRecognizedID is the id of page n's ocr.page.recognized event.
func PageRecognizedID(job string, n int) string {
	return job + "-p" + strconv.Itoa(n) + "-recognized"
}

// StartedID is the id of the job's ocr.job.started event.
func StartedID(job string) string { return job + "-started" }

// ContinueID is the id of the continuation that resumes convert at index
// next of the job's page list.
func ContinueID(job string, next int) string { return job + "-continue-" + strconv.Itoa(next) }

// ProgressID is the id of the progress event reporting done pages.
func ProgressID(job string, done int) string { return job + "-progress-" + strconv.Itoa(done) }

// CompletedID is the id of the job's ocr.job.completed event.
func CompletedID(job string) string { return job + "-completed" }

// FailedID is the id of the job's ocr.job.failed event.
func FailedID(job string) string { return job + "-failed" }

// New builds an event with the given id, type, source and JSON payload, and
// tags it with the job (and page, when page > 0) extensions. The parent's
// traceparent, when present, is carried over.
func New(parent *event.Event, id, typ, source string, page int, jobID string, payload any) (event.Event, error) {
	e := event.New()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource(source)
	e.SetTime(time.Now().UTC())
	if err := e.SetData(event.ApplicationJSON, payload); err != nil {
		return e, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	if jobID != "" {
		e.SetExtension(ExtJob, jobID)
	}
	if page > 0 {
		e.SetExtension(ExtPage, strconv.Itoa(page))
	}
	if parent != nil {
		if tp, ok := parent.Extensions()[ExtTraceparent]; ok {
			e.SetExtension(ExtTraceparent, tp)
		}
	}
	return e, nil
}

// Decode unmarshals e's JSON data into v.
func Decode(e event.Event, v any) error {
	if err := json.Unmarshal(e.Data(), v); err != nil {
		return fmt.Errorf("decode %s data: %w", e.Type(), err)
	}
	return nil
}

// Failed builds the ocr.job.failed event for job, classifying cause.
func Failed(parent *event.Event, source, job, contentID string, errType, msg string, retries int) (event.Event, error) {
	id := job
	if id == "" && parent != nil {
		id = parent.ID()
	}
	return New(parent, FailedID(id), TypeJobFailed, source, 0, job, JobFailed{
		JobID: job, ContentID: contentID, ErrorType: errType, Message: msg, RetryCount: retries,
	})
}
