// Package scratch lays out a job's working state in the blob store and reads
// and writes it with types:
//
//	jobs/<job>/submitted.json    the job event as it was accepted (first writer wins)
//	jobs/<job>/manifest.json     what convert found (pages, source, timing)
//	jobs/<job>/pages/<n>.jpg     page image (route ocr)
//	jobs/<job>/pages/<n>.md      page markdown
//	jobs/<job>/pages/<n>.raw     raw engine output
//	jobs/<job>/pages/<n>.json    page record, written last: the page is done
//	jobs/<job>/blocks/<n>.json   the page's layout blocks (sidecar, document.Layout)
//	jobs/<job>/final.lock        the finalize lock (conditional create)
//	jobs/<job>/source            the source, kept when the job asks for a searchable PDF
//	jobs/<job>/result.md         the assembled document
//	jobs/<job>/result.json       the JSON document (output json)
//	jobs/<job>/result.pdf        the searchable PDF (output pdf)
//	jobs/<job>/outcome.json      the job's terminal outcome (conditional create)
//	jobs/<job>/replayed.json     the attempt that replays the job (dlq replay)
//	deadletters/<id>.json        dead events kept for inspection and replay
package scratch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/events"
	jobs "github.com/ocrflow/ocrflow/shared/job"
)

// Manifest is what convert learnt about a job.
type Manifest struct {
	JobID        string            `json:"job_id"`
	ContentID    string            `json:"content_id,omitempty"`
	TenantID     string            `json:"tenant_id,omitempty"`
	OwnerID      string            `json:"owner_id,omitempty"`
	SourceName   string            `json:"source_name"`
	SourceFormat string            `json:"source_format"`
	SourceBytes  int64             `json:"source_bytes"`
	TotalPages   int               `json:"total_pages"`
	Pages        []int             `json:"pages"`
	Hints        map[string]string `json:"hints,omitempty"`
	// Outputs are the results the job stores (its output_format hint, else
	// OCR_OUTPUTS), in canonical order; empty means markdown alone.
	Outputs []string `json:"outputs,omitempty"`
	// Unavailable maps a requested output this source cannot have (a
	// searchable PDF of a DOCX) to the reason.
	Unavailable map[string]string `json:"unavailable,omitempty"`
	// SourceKey is the key of the source kept in the scratch store (for the
	// searchable PDF); empty when it was not kept.
	SourceKey string    `json:"source_key,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// Inline maps a picture page of an office document to the page that
	// shows it: finalize puts the picture's text in place of its
	// placeholder there instead of on a page of its own.
	Inline map[int]Inline `json:"inline,omitempty"`
}

// Inline places a picture page inside its host page.
type Inline struct {
	// Page is the host page's number.
	Page int `json:"page"`
	// Name is the picture's name in the host page's
	// "<!-- image: NAME -->" placeholder.
	Name string `json:"name"`
}

// PageRecord is a finished page.
type PageRecord struct {
	Page   int               `json:"page"`
	Status events.PageStatus `json:"status"`
	Route  events.Route      `json:"route"`
	Engine string            `json:"engine,omitempty"`
	Reason string            `json:"reason,omitempty"`
	// MarkdownKey is empty for a failed page.
	MarkdownKey string `json:"markdown_key,omitempty"`
	// ImageKey is the key of the page image the engine read (route ocr).
	ImageKey string `json:"image_key,omitempty"`
	// EventID is the id of the event that produced the record.
	EventID string `json:"event_id,omitempty"`
	// TextScore is the page's text-layer score when convert measured it.
	TextScore float64 `json:"text_score"`
	// Fallback is true when the fallback engine answered the page
	// because the primary stayed unavailable.
	Fallback bool `json:"fallback,omitempty"`
	// WidthPt and HeightPt are the page's size in points, WidthPx and
	// HeightPx its rendered image's in pixels (0 when unknown or none).
	WidthPt  float64 `json:"width_pt,omitempty"`
	HeightPt float64 `json:"height_pt,omitempty"`
	WidthPx  int     `json:"width_px,omitempty"`
	HeightPx int     `json:"height_px,omitempty"`
	// BlocksKey is the key of the page's layout sidecar (BlocksKey of this
	// job, or of the job a replay took the page over from); empty for a
	// failed page.
	BlocksKey string `json:"blocks_key,omitempty"`
	// BlockCount is how many blocks the sidecar holds.
	BlockCount int `json:"block_count,omitempty"`
	// DoneAt is when the page was finished (PutRecord sets it).
	DoneAt time.Time `json:"done_at,omitzero"`
}

// Submitted is the job as it was accepted, kept so that any process can
// report a job before convert starts it and replay can run it again.
type Submitted struct {
	SubmittedAt time.Time `json:"submitted_at"`
	// By names what accepted the job (ocrflow submit, the API, a
	// backfill, or convert for a job published straight to the broker).
	By string `json:"by,omitempty"`
	// Job is the simpleprocess.job event (structured CloudEvents JSON).
	Job json.RawMessage `json:"job"`
}

// DeadLetter is a kept dead letter: an event whose retries ran out, with
// Knative's account of why (knativeerrorcode, knativeerrordest,
// knativeerrordata), kept for inspection and replay.
type DeadLetter struct {
	ReceivedAt time.Time `json:"received_at"`
	// Code is the last HTTP status (knativeerrorcode).
	Code int `json:"code"`
	// Dest is where delivery failed (knativeerrordest).
	Dest string `json:"dest"`
	// Reason is the last response body (knativeerrordata).
	Reason string      `json:"reason"`
	Event  event.Event `json:"event"`
	// ReplayedAt and ReplayedAs are set once the dead letter has been
	// replayed: when, and as which job attempt.
	ReplayedAt *time.Time `json:"replayed_at,omitempty"`
	ReplayedAs string     `json:"replayed_as,omitempty"`
}

// Replayed links a job to the attempt that replays it.
type Replayed struct {
	At time.Time `json:"at"`
	// As is the replaying attempt's job id.
	As string `json:"as"`
}

// Outcome is a job's terminal outcome. It is created once; whoever creates
// it decides the job's terminal event.
type Outcome struct {
	Status  string          `json:"status"` // completed | failed
	EventID string          `json:"event_id"`
	Event   json.RawMessage `json:"event"`
	// Cause is the id of the event whose handling decided the outcome. A
	// redelivery of that event replies the terminal event again (Ended):
	// the first reply may have been lost between the outcome and its
	// publication.
	Cause string `json:"cause,omitempty"`
}

// Keys.

// JobPrefix returns the key prefix of a job's scratch objects.
func JobPrefix(job string) string { return "jobs/" + job + "/" }

// SubmittedKey is the key of the job as it was accepted.
func SubmittedKey(job string) string { return JobPrefix(job) + "submitted.json" }

// ReplayedKey is the key of the link to the attempt that replays the job.
func ReplayedKey(job string) string { return JobPrefix(job) + "replayed.json" }

// ManifestKey is the key of the job's manifest.
func ManifestKey(job string) string { return JobPrefix(job) + "manifest.json" }

// PagesPrefix is the prefix of the job's page objects.
func PagesPrefix(job string) string { return JobPrefix(job) + "pages/" }

// PageKey is the key of page n's object with the given extension.
func PageKey(job string, n int, ext string) string {
	return PagesPrefix(job) + strconv.Itoa(n) + "." + ext
}

// BlocksKey is the key of page n's layout sidecar. It lives outside
// pages/, where every *.json is a page record.
func BlocksKey(job string, n int) string {
	return JobPrefix(job) + "blocks/" + strconv.Itoa(n) + ".json"
}

// LockKey is the key of the finalize lock.
func LockKey(job string) string { return JobPrefix(job) + "final.lock" }

// ResultKey is the key of the assembled document.
func ResultKey(job string) string { return JobPrefix(job) + "result.md" }

// DocumentKey is the key of the JSON document.
func DocumentKey(job string) string { return JobPrefix(job) + "result.json" }

// PDFKey is the key of the searchable PDF.
func PDFKey(job string) string { return JobPrefix(job) + "result.pdf" }

// SourceKey is the key of the job's source, kept for the searchable PDF.
func SourceKey(job string) string { return JobPrefix(job) + "source" }

// OutcomeKey is the key of the job's terminal outcome.
func OutcomeKey(job string) string { return JobPrefix(job) + "outcome.json" }

// DeadLettersPrefix is the prefix of every kept dead letter.
const DeadLettersPrefix = "deadletters/"

// DeadLetterKey is the key a dead event is kept under.
func DeadLetterKey(id string) string {
	return DeadLettersPrefix + strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(id) + ".json"
}

// PutJSON stores v as JSON under key.
func PutJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return s.Put(ctx, key, bytes.NewReader(b))
}

// CreateJSON stores v as JSON under key only if key is absent.
func CreateJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return s.Create(ctx, key, bytes.NewReader(b))
}

// GetJSON reads key into v. A missing key is ErrNotFound.
func GetJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := GetBytes(ctx, s, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// GetBytes reads the whole object under key.
func GetBytes(ctx context.Context, s Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// Records returns the finished pages of job keyed by page number.
func Records(ctx context.Context, s Store, job string) (map[int]PageRecord, error) {
	keys, err := s.List(ctx, PagesPrefix(job))
	if err != nil {
		return nil, err
	}
	out := map[int]PageRecord{}
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		var r PageRecord
		if err := GetJSON(ctx, s, k, &r); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		out[r.Page] = r
	}
	return out, nil
}

// DonePages returns the numbers of job's finished pages: those with a
// record. It lists keys and reads no object, so counting a job's pages
// costs one List, however many pages it has (Records reads every record:
// use it once, when the job is complete).
func DonePages(ctx context.Context, s Store, job string) (map[int]bool, error) {
	prefix := PagesPrefix(job)
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	done := make(map[int]bool, len(keys)/2)
	for _, k := range keys {
		name, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), ".json")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil {
			done[n] = true
		}
	}
	return done, nil
}

// Origin is what a job's durable state says about its source: enough to
// key and trace its result.
type Origin struct {
	ContentID, TenantID, OwnerID string
	// Resolution is the job's resolution/mode hint.
	Resolution string
}

// OriginOf reads job's origin from its manifest, else from the job as it
// was submitted; ok is false when the store holds neither.
func OriginOf(ctx context.Context, s Store, job string) (o Origin, ok bool, err error) {
	var m Manifest
	switch err := GetJSON(ctx, s, ManifestKey(job), &m); {
	case err == nil:
		return Origin{ContentID: m.ContentID, TenantID: m.TenantID, OwnerID: m.OwnerID, Resolution: m.Hints["resolution"]}, true, nil
	case !errors.Is(err, ErrNotFound):
		return o, false, err
	}
	var sub Submitted
	switch err := GetJSON(ctx, s, SubmittedKey(job), &sub); {
	case errors.Is(err, ErrNotFound):
		return o, false, nil
	case err != nil:
		return o, false, err
	}
	var e event.Event
	if err := json.Unmarshal(sub.Job, &e); err != nil {
		return o, false, fmt.Errorf("submitted job %s: %w", job, err)
	}
	j, err := jobs.Parse(e)
	if err != nil && j.ContentID == "" {
		return o, false, nil // not a job this pipeline could key
	}
	return Origin{ContentID: j.ContentID, TenantID: j.TenantID, OwnerID: j.OwnerID, Resolution: j.Hints.Resolution}, true, nil
}

// PutRecord stores rec as the job's record of page rec.Page, stamping
// DoneAt when it is unset: the page is done.
func PutRecord(ctx context.Context, s Store, job string, rec PageRecord) error {
	if rec.DoneAt.IsZero() {
		rec.DoneAt = time.Now().UTC()
	}
	return PutJSON(ctx, s, PageKey(job, rec.Page, "json"), rec)
}

// Submit keeps e as job's accepted event unless one is kept already (the
// first acceptance wins, so a redelivery or a second submitter changes
// nothing).
func Submit(ctx context.Context, s Store, job, by string, e event.Event) error {
	b, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode job %s: %w", job, err)
	}
	err = CreateJSON(ctx, s, SubmittedKey(job), Submitted{SubmittedAt: time.Now().UTC(), By: by, Job: b})
	if errors.Is(err, ErrExists) {
		return nil
	}
	return err
}

// GetRecord returns page n's record, or ok=false if the page is not done.
func GetRecord(ctx context.Context, s Store, job string, n int) (PageRecord, bool, error) {
	var r PageRecord
	err := GetJSON(ctx, s, PageKey(job, n, "json"), &r)
	if errors.Is(err, ErrNotFound) {
		return r, false, nil
	}
	return r, err == nil, err
}

// GetOutcome returns the job's outcome, or ok=false if it has none yet.
func GetOutcome(ctx context.Context, s Store, job string) (Outcome, bool, error) {
	var o Outcome
	err := GetJSON(ctx, s, OutcomeKey(job), &o)
	if errors.Is(err, ErrNotFound) {
		return o, false, nil
	}
	return o, err == nil, err
}

// Conclude records e (ocr.job.completed or ocr.job.failed), decided by
// handling the event with id cause, as the job's terminal outcome, exactly
// once per job. It reports whether to emit e: true when this call (or an
// earlier delivery of the same terminal event) decided the outcome, false
// when a different terminal event already did.
func Conclude(ctx context.Context, s Store, job, cause string, e eventJSON) (bool, error) {
	b, err := e.MarshalJSON()
	if err != nil {
		return false, fmt.Errorf("encode outcome: %w", err)
	}
	status := "failed"
	if e.Type() == events.TypeJobCompleted {
		status = "completed"
	}
	err = CreateJSON(ctx, s, OutcomeKey(job), Outcome{Status: status, EventID: e.ID(), Event: b, Cause: cause})
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, ErrExists) {
		return false, err
	}
	o, ok, err := GetOutcome(ctx, s, job)
	if err != nil || !ok {
		return false, err
	}
	if o.EventID == e.ID() {
		noteRepeat(ctx)
	}
	return o.EventID == e.ID(), nil
}

type repeatKey struct{}

// WithRepeats returns ctx in which Conclude, End and Ended note when they
// hand out a terminal event an earlier delivery already decided (a
// redelivered deciding event replies it again), and a function reporting
// whether they did. The metrics count a terminal reply only once this way.
func WithRepeats(ctx context.Context) (context.Context, func() bool) {
	seen := new(atomic.Bool)
	return context.WithValue(ctx, repeatKey{}, seen), seen.Load
}

func noteRepeat(ctx context.Context) {
	if seen, ok := ctx.Value(repeatKey{}).(*atomic.Bool); ok {
		seen.Store(true)
	}
}

// eventJSON is the part of event.Event Conclude needs.
type eventJSON interface {
	ID() string
	Type() string
	MarshalJSON() ([]byte, error)
}

// End records ev as the job's terminal outcome, decided by handling cause,
// and returns the event to reply: ev itself, or nil when the job had
// already ended with another terminal event.
func End(ctx context.Context, s Store, job string, cause, ev event.Event) (*event.Event, error) {
	emit, err := Conclude(ctx, s, job, cause.ID(), ev)
	if err != nil {
		return nil, err
	}
	if !emit {
		return nil, nil
	}
	return &ev, nil
}

// Ended reports whether job has ended. When it has and the event with id
// cause decided it, again is the terminal event to reply once more (the
// redelivery of the deciding event means its reply may not have gone
// out); any other late event of an ended job replies nothing.
func Ended(ctx context.Context, s Store, job, cause string) (again *event.Event, ended bool, err error) {
	o, ended, err := GetOutcome(ctx, s, job)
	if err != nil || !ended {
		return nil, false, err
	}
	if o.Cause == "" || o.Cause != cause {
		return nil, true, nil
	}
	var e event.Event
	if err := json.Unmarshal(o.Event, &e); err != nil {
		return nil, true, fmt.Errorf("decode outcome of %s: %w", job, err)
	}
	noteRepeat(ctx)
	return &e, true, nil
}

// RecognizedEvent builds the ocr.page.recognized event that reports rec.
func RecognizedEvent(parent *event.Event, source, job string, pages int, rec PageRecord) (*event.Event, error) {
	ev, err := events.New(parent, events.PageRecognizedID(job, rec.Page), events.TypePageRecognized, source, rec.Page, job,
		events.PageRecognized{
			JobID: job, Page: rec.Page, Pages: pages, Status: rec.Status, Route: rec.Route,
			Engine: rec.Engine, Reason: rec.Reason, ResultKey: rec.MarkdownKey,
			BlocksKey: rec.BlocksKey, BlockCount: rec.BlockCount,
		})
	if err != nil {
		return nil, err
	}
	return &ev, nil
}
