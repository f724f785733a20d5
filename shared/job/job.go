// Package job parses and validates the simple-process job envelope that
// starts an OCR job, and builds it for producers.
package job

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/tendant/simple-process/pkg/contracts"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

// Job is a validated OCR job.
type Job struct {
	ID string
	// ContentID is file.attributes.content_id, falling back to file.id.
	ContentID string
	TenantID  string
	OwnerID   string
	Name      string
	// Location is file.blob.location (s3://…, file://… or a path).
	Location     string
	Size         int64
	MIME         string
	SHA256       string
	PresignedGet string
	Hints        Hints
}

// Priority orders jobs; backfills run at low priority.
type Priority string

// Priorities.
const (
	PriorityHigh   Priority = events.PriorityHigh
	PriorityNormal Priority = events.PriorityNormal
	PriorityLow    Priority = events.PriorityLow
)

// Hints are the job options a producer may set.
type Hints struct {
	Force          bool
	Priority       Priority
	TimeoutSeconds int
	Resolution     string
	Pages          string
	// OutputFormat is the outputs the job asks for, as a canonical comma
	// list (ParseOutputs); "" leaves the choice to OCR_OUTPUTS.
	OutputFormat string
	// TextLayer overrides TEXT_LAYER for this job: auto, off or only.
	TextLayer string
	// MaxPageErrorRate overrides MAX_PAGE_ERROR_RATE for this job (nil:
	// the configured rate): the share of pages that may fail and the job
	// still complete.
	MaxPageErrorRate *float64
	// ReplayOf names the job this one replays (ocrflow dlq replay): its
	// finished pages are taken over instead of recognized again, and its
	// result is superseded.
	ReplayOf string
	// Unknown holds hints ocrflow does not understand (logged, not fatal).
	Unknown map[string]string
}

// idPattern is the rule ValidID checks, as error messages state it. (A
// compiled regexp of it would cost a millisecond at every process start:
// the bounded repetition unrolls 127 times.)
const idPattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`

// ValidID reports whether id can name a job: it becomes part of blob keys
// and event ids, so it is restricted to [A-Za-z0-9._-], at most 128 bytes,
// and starts with a letter or a digit.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Parse decodes and validates a simpleprocess.job CloudEvent. The returned
// error is classified as validation; the job id is returned whenever it
// could be read so that the failure can still be reported for that job.
func Parse(e event.Event) (Job, error) {
	j := Job{ID: e.ID()}
	if e.Type() != events.TypeJob {
		return j, failure.Validation("event type %q is not %s", e.Type(), events.TypeJob)
	}
	if ct := e.DataContentType(); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != event.ApplicationJSON {
			return j, failure.Validation("datacontenttype %q is not application/json", ct)
		}
	}
	ce := contracts.CloudEvent{DataContentType: event.ApplicationJSON, Data: e.Data()}
	raw, err := ce.DecodeJob()
	if err != nil {
		return j, failure.Validation("job data is not a simple-process job: %v", err)
	}
	if raw.JobID != "" {
		j.ID = raw.JobID
	}
	if raw.JobID != "" && raw.JobID != e.ID() {
		return j, failure.Validation("job_id %q differs from event id %q", raw.JobID, e.ID())
	}
	if !ValidID(j.ID) {
		return j, failure.Validation("job id %q must match %s", j.ID, idPattern)
	}
	if raw.UoW != events.UoW {
		return j, failure.Validation("uow %q is not %q", raw.UoW, events.UoW)
	}
	j.TenantID = raw.File.TenantID
	j.OwnerID = raw.File.OwnerID
	j.Name = raw.File.Name
	j.Location = raw.File.Blob.Location
	j.Size = raw.File.Blob.Size
	j.PresignedGet = raw.PresignedGet
	j.ContentID = attr(raw.File.Attributes, "content_id")
	if j.ContentID == "" {
		j.ContentID = raw.File.ID
	}
	j.MIME = attr(raw.File.Attributes, "mime")
	j.SHA256 = attr(raw.File.Attributes, "sha256")
	if j.Name == "" {
		j.Name = attr(raw.File.Attributes, "filename")
	}
	if j.ContentID == "" && j.Location == "" && j.PresignedGet == "" {
		return j, failure.Validation("job names no source: set file.attributes.content_id, file.id, file.blob.location or presigned_get")
	}
	h, err := parseHints(raw.Hints)
	if err != nil {
		return j, err
	}
	j.Hints = h
	return j, nil
}

func attr(m map[string]any, k string) string {
	if v, ok := m[k].(string); ok {
		return v
	}
	return ""
}

// HintMaxPageErrorRate is the hint that sets a job's page-failure policy.
const HintMaxPageErrorRate = "max_page_error_rate"

// HintReplayOf is the hint that makes a job a replay of another.
const HintReplayOf = "replay_of"

// MaxTimeoutSeconds caps the timeout_seconds hint.
const MaxTimeoutSeconds = 300

func parseHints(in map[string]string) (Hints, error) {
	h := Hints{Priority: PriorityNormal}
	for k, v := range in {
		v = strings.TrimSpace(v)
		switch k {
		case "force":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return h, failure.Validation("hint force=%q is not a boolean", v)
			}
			h.Force = b
		case "priority":
			switch p := Priority(strings.ToLower(v)); p {
			case PriorityHigh, PriorityNormal, PriorityLow:
				h.Priority = p
			default:
				return h, failure.Validation("hint priority=%q is not high, normal or low", v)
			}
		case "timeout_seconds":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxTimeoutSeconds {
				return h, failure.Validation("hint timeout_seconds=%q is not an integer in 1..%d", v, MaxTimeoutSeconds)
			}
			h.TimeoutSeconds = n
		case "resolution", "mode":
			h.Resolution = v
		case "pages":
			if _, err := ParsePages(v, 1<<30); err != nil {
				return h, err
			}
			h.Pages = v
		case "text_layer":
			if _, ok := textlayer.ParseMode(v); !ok {
				return h, failure.Validation("hint text_layer=%q is not auto, off or only", v)
			}
			h.TextLayer = strings.ToLower(v)
		case HintMaxPageErrorRate:
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 || x > 1 {
				return h, failure.Validation("hint max_page_error_rate=%q is not a number from 0 to 1", v)
			}
			h.MaxPageErrorRate = &x
		case HintReplayOf:
			if !ValidID(v) {
				return h, failure.Validation("hint replay_of=%q is not a job id", v)
			}
			h.ReplayOf = v
		case "output_format":
			if v == "" {
				continue
			}
			outs, err := ParseOutputs(v)
			if err != nil {
				return h, failure.Validation("hint output_format=%q: %v", v, err)
			}
			h.OutputFormat = strings.Join(outs, ",")
		default:
			if h.Unknown == nil {
				h.Unknown = map[string]string{}
			}
			h.Unknown[k] = v
		}
	}
	return h, nil
}

// Outputs a job can ask for (the output_format hint, OCR_OUTPUTS), in
// their canonical order.
const (
	// OutputMarkdown is the assembled markdown.
	OutputMarkdown = "markdown"
	// OutputJSON is the structured JSON document (docs/outputs.md).
	OutputJSON = "json"
	// OutputPDF is the searchable PDF.
	OutputPDF = "pdf"
)

// Outputs lists every output, in canonical order.
var Outputs = []string{OutputMarkdown, OutputJSON, OutputPDF}

// ParseOutputs parses a comma list of outputs ("markdown,json,pdf", any
// order, case and spacing, repeats allowed) into canonical order. An
// unknown name or an empty list is an error naming it.
func ParseOutputs(s string) ([]string, error) {
	want := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if part == "" {
			continue
		}
		if !slices.Contains(Outputs, part) {
			return nil, fmt.Errorf("%q is not an output (%s)", part, strings.Join(Outputs, ", "))
		}
		want[part] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no output named (%s)", strings.Join(Outputs, ", "))
	}
	out := make([]string, 0, len(want))
	for _, o := range Outputs {
		if want[o] {
			out = append(out, o)
		}
	}
	return out, nil
}

// OutputsOr returns the outputs the job asks for (its output_format
// hint), or def when it names none.
func (j Job) OutputsOr(def []string) []string {
	if j.Hints.OutputFormat == "" {
		return def
	}
	outs, err := ParseOutputs(j.Hints.OutputFormat)
	if err != nil {
		return def // Parse validated the hint: cannot happen
	}
	return outs
}

// LogUnknown logs hints the pipeline ignores (with ctx, for its trace id).
func (j Job) LogUnknown(ctx context.Context, log *slog.Logger) {
	if len(j.Hints.Unknown) == 0 {
		return
	}
	keys := make([]string, 0, len(j.Hints.Unknown))
	for k := range j.Hints.Unknown {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	log.InfoContext(ctx, "ignoring unknown hints", "job", j.ID, "hints", keys)
}

// Timeout returns the per-page timeout hint, or def when unset.
func (j Job) Timeout(def time.Duration) time.Duration {
	if j.Hints.TimeoutSeconds > 0 {
		return time.Duration(j.Hints.TimeoutSeconds) * time.Second
	}
	return def
}

// ParsePages parses a page-range hint such as "1-5,9" into sorted, unique
// 1-based page numbers no greater than total. An empty spec selects every
// page.
func ParsePages(spec string, total int) ([]int, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		out := make([]int, total)
		for i := range out {
			out[i] = i + 1
		}
		return out, nil
	}
	seen := map[int]bool{}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 1 || b < a {
			return nil, failure.Validation("page range %q is malformed (use e.g. 1-5,9)", spec)
		}
		for p := a; p <= b && p <= total; p++ {
			seen[p] = true
		}
	}
	out := make([]int, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	if len(out) == 0 {
		return nil, failure.Validation("page range %q selects no page of %d", spec, total)
	}
	return out, nil
}

// Spec describes a job to submit.
type Spec struct {
	ID        string
	ContentID string
	Location  string
	Name      string
	TenantID  string
	OwnerID   string
	Hints     map[string]string
	Source    string
}

// NewEvent builds the simpleprocess.job CloudEvent for spec, with the uow
// extension set so Triggers can filter without reading data.
func NewEvent(spec Spec) (event.Event, error) {
	attrs := map[string]any{}
	if spec.ContentID != "" {
		attrs["content_id"] = spec.ContentID
	}
	raw := contracts.Job{
		Version: "1.0",
		JobID:   spec.ID,
		UoW:     events.UoW,
		File: contracts.File{
			ID: spec.ContentID, TenantID: spec.TenantID, OwnerID: spec.OwnerID, Name: spec.Name,
			Blob: contracts.Blob{Location: spec.Location}, Attributes: attrs,
		},
		Hints: spec.Hints,
	}
	if raw.Hints == nil {
		raw.Hints = map[string]string{}
	}
	src := spec.Source
	if src == "" {
		src = "ocrflow/submit"
	}
	ce, err := contracts.NewJobCloudEvent(src, raw)
	if err != nil {
		return event.Event{}, fmt.Errorf("build job event: %w", err)
	}
	e := event.New()
	e.SetID(ce.ID)
	e.SetType(ce.Type)
	e.SetSource(ce.Source)
	e.SetTime(ce.Time)
	e.SetExtension(events.ExtUoW, events.UoW)
	e.SetExtension(events.ExtJob, ce.ID)
	e.SetExtension(events.ExtPriority, string(priorityOf(spec.Hints)))
	if err := e.SetData(ce.DataContentType, []byte(ce.Data)); err != nil {
		return event.Event{}, fmt.Errorf("build job event: %w", err)
	}
	return e, nil
}

// priorityOf reads the priority hint of a spec (normal when absent or
// unknown: Parse refuses an unknown one).
func priorityOf(hints map[string]string) Priority {
	switch p := Priority(strings.ToLower(strings.TrimSpace(hints["priority"]))); p {
	case PriorityHigh, PriorityLow:
		return p
	}
	return PriorityNormal
}

// Again returns the job event orig as a new job: the same source, file and
// hints, under id, with hints added (replacing hints of the same name).
// Everything else orig's data carries is kept as it is.
func Again(orig event.Event, id string, hints map[string]string) (event.Event, error) {
	if !ValidID(id) {
		return event.Event{}, failure.Validation("job id %q must match %s", id, idPattern)
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(orig.Data(), &data); err != nil {
		return event.Event{}, failure.Validation("job %s: data is not a JSON object: %v", orig.ID(), err)
	}
	merged := map[string]string{}
	if raw, ok := data["hints"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &merged); err != nil {
			return event.Event{}, failure.Validation("job %s: hints: %v", orig.ID(), err)
		}
	}
	maps.Copy(merged, hints)
	var err error
	if data["hints"], err = json.Marshal(merged); err != nil {
		return event.Event{}, fmt.Errorf("job %s: hints: %w", orig.ID(), err)
	}
	if data["job_id"], err = json.Marshal(id); err != nil {
		return event.Event{}, fmt.Errorf("job %s: id: %w", orig.ID(), err)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return event.Event{}, fmt.Errorf("job %s: %w", orig.ID(), err)
	}
	e := orig.Clone()
	e.SetID(id)
	e.SetTime(time.Now().UTC())
	e.SetExtension(events.ExtJob, id)
	if err := e.SetData(event.ApplicationJSON, b); err != nil {
		return event.Event{}, fmt.Errorf("job %s: %w", orig.ID(), err)
	}
	return e, nil
}
