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
	// ExtUoW is the unit of work of a simpleprocess.job (UoW for OCR), so
	// Triggers can filter jobs without reading their data.
	ExtUoW = "uow"
	// ExtJob carries the job id on every event of a job.
	ExtJob = "ocrjob"
	// ExtPage carries the page number on page events.
	ExtPage = "ocrpage"
	// ExtTraceparent is the W3C trace context, copied from the job to
	// every event it causes.
	ExtTraceparent = "traceparent"
	// ExtPriority carries the job's priority (high, normal, low) on every
	// event of the job, so the runtimes can serve live work before bulk
	// work (the priority lanes).
	ExtPriority = "ocrpriority"
	// ExtErrorCode is Knative's dead-letter extension: the HTTP status of
	// the last delivery attempt.
	ExtErrorCode = "knativeerrorcode"
	// ExtErrorDest is Knative's dead-letter extension: where the last
	// delivery attempt went.
	ExtErrorDest = "knativeerrordest"
	// ExtErrorData is Knative's dead-letter extension: the last answer's
	// body, base64-encoded.
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
	// JobID is the job the page belongs to.
	JobID string `json:"job_id"`
	// Page is the page number in the source document, 1-based.
	Page int `json:"page"`
	// Pages is how many pages the job converts (after its pages hint).
	Pages int `json:"pages"`
	// Route says whether the page goes to the engine or takes its text
	// layer.
	Route Route `json:"route"`
	// ImageKey is the blob key of the page image (route ocr).
	ImageKey string `json:"image_key,omitempty"`
	// TextKey is the blob key of the page's markdown (route text).
	TextKey string `json:"text_key,omitempty"`
	// Width is the page image's width in pixels (route ocr).
	Width int `json:"width,omitempty"`
	// Height is the page image's height in pixels (route ocr).
	Height int `json:"height,omitempty"`
	// WidthPt is the page's width in points (1/72 inch): a PDF page's
	// bounds, an image's pixels at its stated resolution (72 dpi when
	// none); 0 for office text, which has no page geometry. A box in the
	// image's pixels maps onto the page by x·WidthPt/Width.
	WidthPt float64 `json:"width_pt,omitempty"`
	// HeightPt is the page's height in points (y·HeightPt/Height).
	HeightPt float64 `json:"height_pt,omitempty"`
	// BlocksKey is the blob key of the page's layout sidecar (route text:
	// convert wrote it; route ocr: recognize writes it).
	BlocksKey string `json:"blocks_key,omitempty"`
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
	// JobID is the job the page belongs to.
	JobID string `json:"job_id"`
	// Page is the page number in the source document, 1-based.
	Page int `json:"page"`
	// Pages is how many pages the job converts.
	Pages int `json:"pages"`
	// Status says whether the page was recognized or is a placeholder.
	Status PageStatus `json:"status"`
	// Route is the route the page took.
	Route Route `json:"route,omitempty"`
	// Engine is the engine that produced the page (engine_used).
	Engine string `json:"engine,omitempty"`
	// Reason explains a failed page (error type and message).
	Reason string `json:"reason,omitempty"`
	// ResultKey is the blob key of the page's markdown.
	ResultKey string `json:"result_key,omitempty"`
	// BlocksKey is the blob key of the page's layout sidecar: its blocks
	// in reading order with their labels and boxes in page points
	// (shared/document.Layout); empty for a failed page.
	BlocksKey string `json:"blocks_key,omitempty"`
	// BlockCount is how many blocks the page's layout has (0 for a failed
	// page).
	BlockCount int `json:"block_count"`
}

// JobStarted is the payload of ocr.job.started.
type JobStarted struct {
	// JobID is the job's id.
	JobID string `json:"job_id"`
	// ContentID is the job's source content (simple-content).
	ContentID string `json:"content_id,omitempty"`
	// TenantID is the tenant the job names.
	TenantID string `json:"tenant_id,omitempty"`
	// SourceFormat is the format sniffed from the source's bytes (pdf,
	// png, docx, …).
	SourceFormat string `json:"source_format"`
	// Pages is how many pages the job converts; office documents count
	// each embedded picture as a page.
	Pages int `json:"pages"`
	// Timestamp is when convert started the job (RFC 3339, UTC).
	Timestamp string `json:"timestamp"`
}

// ConvertContinue is the payload of ocr.convert.continue: the job event as
// it arrived (structured CloudEvents JSON) and where in its page list
// convert goes on.
type ConvertContinue struct {
	// JobID is the job's id.
	JobID string `json:"job_id"`
	// Next is the 0-based index into the job's page list (the manifest's
	// Pages) of the first page still to convert.
	Next int `json:"next"`
	// Job is the original simpleprocess.job event.
	Job json.RawMessage `json:"job"`
}

// JobProgress is the payload of ocr.job.progress.
type JobProgress struct {
	// JobID is the job's id.
	JobID string `json:"job_id"`
	// PagesCompleted is how many pages are done (recognized or failed).
	// Events can arrive out of order across processes: use the largest.
	PagesCompleted int `json:"pages_completed"`
	// TotalPages is how many pages the job converts.
	TotalPages int `json:"total_pages"`
	// Percent is PagesCompleted as a whole percentage of TotalPages.
	Percent int `json:"percent_complete"`
	// Seq only grows within a job (it is the pages done when the event
	// was made): drop a progress event whose seq is not above the last one
	// you kept — a slower process may deliver an older one late.
	Seq int `json:"seq"`
}

// JobCompleted is the payload of ocr.job.completed.
type JobCompleted struct {
	// JobID is the job's id.
	JobID string `json:"job_id"`
	// ContentID is the job's source content (simple-content).
	ContentID string `json:"content_id,omitempty"`
	// DerivedContentID identifies the stored markdown in the content store
	// (a derived content id, or a file path for the directory store); the
	// first stored output's when the job did not ask for markdown.
	DerivedContentID string `json:"derived_content_id"`
	// DerivedContents maps each stored output (markdown, json, pdf) to its
	// reference in the content store.
	DerivedContents map[string]string `json:"derived_contents,omitempty"`
	// UnavailableOutputs maps an output the job asked for that its source
	// cannot have (a searchable PDF of a DOCX) to the reason.
	UnavailableOutputs map[string]string `json:"unavailable_outputs,omitempty"`
	// PageCount is how many pages the job converted.
	PageCount int `json:"page_count"`
	// PagesByRoute counts pages by how they were read: "gpu" (by the
	// engine, whichever it is) and "text" (their own text layer).
	PagesByRoute map[string]int `json:"pages_by_route"`
	// EngineUsed maps page number to the engine that answered it.
	EngineUsed map[string]string `json:"engine_used,omitempty"`
	// FailedPages lists the pages that are placeholders in the result.
	FailedPages []FailedPage `json:"failed_pages,omitempty"`
	// ProcessingTimeMS is the time from convert's start to the stored
	// result, in milliseconds.
	ProcessingTimeMS int64 `json:"processing_time_ms"`
	// Reused is true when an earlier result with the same idempotency key
	// was found and nothing was processed.
	Reused bool `json:"reused,omitempty"`
}

// FailedPage names a page that is a placeholder in the result.
type FailedPage struct {
	// Page is the page number, 1-based.
	Page int `json:"page"`
	// Route is the route the page took (ocr or text).
	Route Route `json:"route,omitempty"`
	// Reason is the failure's class and message ("permanent: …",
	// "transient: retries exhausted …"), or the engine's reason for giving
	// up ("repetition: …", "empty: …"); at most 500 bytes.
	Reason string `json:"reason"`
}

// JobFailed is the payload of ocr.job.failed.
type JobFailed struct {
	// JobID is the job's id.
	JobID string `json:"job_id"`
	// ContentID is the job's source content, when the failing stage knows
	// it.
	ContentID string `json:"content_id,omitempty"`
	// ErrorType is the failure's class: validation, permanent, transient
	// (retries exhausted) or pages_failed (more pages failed than the job's
	// max_page_error_rate allows; FailedPages lists them).
	ErrorType string `json:"error_type"`
	// Message says what went wrong, at most 700 bytes.
	Message string `json:"error_message"`
	// RetryCount is how many deliveries preceded the failing one, when
	// the failing stage knows it (convert); 0 otherwise.
	RetryCount int `json:"retry_count"`
	// FailedPages lists the failed pages of a job that failed with
	// error_type pages_failed.
	FailedPages []FailedPage `json:"failed_pages,omitempty"`
}

// ErrorTypePagesFailed is the error_type of a job that failed because too
// many of its pages did (the page-failure policy).
const ErrorTypePagesFailed = "pages_failed"

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
// traceparent and priority, when present, are carried over.
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
		for _, ext := range []string{ExtTraceparent, ExtPriority} {
			if v, ok := parent.Extensions()[ext]; ok {
				e.SetExtension(ext, v)
			}
		}
	}
	return e, nil
}

// The priorities of a job (ExtPriority, the priority hint).
const (
	PriorityHigh   = "high"
	PriorityNormal = "normal"
	PriorityLow    = "low"
)

// Priorities lists the priorities from the most urgent.
func Priorities() []string { return []string{PriorityHigh, PriorityNormal, PriorityLow} }

// PriorityOf returns e's priority: its ExtPriority extension when it is a
// known priority, else normal.
func PriorityOf(e event.Event) string {
	switch p, _ := e.Extensions()[ExtPriority].(string); p {
	case PriorityHigh, PriorityLow:
		return p
	}
	return PriorityNormal
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
