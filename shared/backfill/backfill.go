// Package backfill OCRs content that already exists: it enumerates
// contents from a Source (simple-content's database, or a list of content
// ids resolved through the v5 API), keeps those the Filter selects —
// originals only, by tenant, owner, MIME type, creation time and status,
// skipping those that already have a current ocrflow result — and submits
// one simple-process job per content, paced by a token bucket and the
// pipeline's backlog, resumable from a checkpoint. A dry run estimates the
// work instead.
//
// A job's id derives from the content id and the current idempotency key
// (JobID), and a job is claimed in the scratch store
// (jobs/<id>/submitted.json) before it is published, so re-running a
// backfill never submits a content twice for the same model.
package backfill

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ocrflow/ocrflow/shared/simplecontent"
)

// Item is one content a Source found, with what the filters need to know.
type Item struct {
	ID        string
	TenantID  string
	OwnerID   string
	Status    string
	MIME      string
	Size      int64
	Name      string
	CreatedAt time.Time
	// Derived is true for a derived content (a result, a thumbnail): never
	// submitted.
	Derived bool
	// Results are ocrflow's derived contents of the item (generator
	// ocrflow, variant ocr_markdown), live ones only.
	Results []Result
	// Missing is set when the source could not find the content: its skip
	// reason (ReasonNotFound, ReasonInvalidID).
	Missing string
	// Err is set when resolving the item failed; it counts as failed.
	Err error
	// Pos is the source position just after this item.
	Pos Cursor
}

// Result is one of ocrflow's results of a content.
type Result struct {
	ID string
	// Key is its idempotency key (metadata idempotency_key).
	Key string
	// State is the metadata state: processing, completed, failed or
	// superseded.
	State string
	// Status is the derived content's simple-content status.
	Status string
}

// Current reports whether r is a finished, live result: state completed
// and status uploaded, as the pipeline's own reuse check requires.
// Superseded, failed and unfinished results are not.
func (r Result) Current() bool {
	return r.State == simplecontent.StateCompleted && r.Status == simplecontent.StatusUploaded
}

// Cursor is a position in a source: the last item handed out. The
// database source orders by (created_at, id); the ids source counts lines.
type Cursor struct {
	CreatedAt time.Time `json:"created_at,omitzero"`
	ID        string    `json:"id,omitempty"`
	Line      int       `json:"line,omitempty"`
}

// Skip reasons, as summaries and --json report them.
const (
	ReasonNotFound  = "not_found"         // ids: no such content (or deleted)
	ReasonInvalidID = "invalid_id"        // ids: not a content id
	ReasonDerived   = "derived"           // a derived content, not an original
	ReasonStatus    = "status"            // status not selected
	ReasonTenant    = "tenant"            // tenant not selected
	ReasonOwner     = "owner"             // owner not selected
	ReasonCreated   = "created"           // created outside the time window
	ReasonMIME      = "mime"              // MIME type not selected
	ReasonHasOCR    = "has_current_ocr"   // a completed result with the current key exists
	ReasonNotStale  = "not_stale"         // --stale: no result from another model, mode or version
	ReasonSubmitted = "already_submitted" // the job was claimed before (an earlier run, a duplicate)
)

// OOXML MIME types: the office formats ocrflow reads natively.
const (
	MIMEDocx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	MIMEPptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	MIMEXlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// DefaultMIME is the MIME selection when none is given: what ocrflow reads
// without LibreOffice.
var DefaultMIME = []string{"application/pdf", "image/*", MIMEDocx, MIMEPptx, MIMEXlsx}

// DefaultStatuses is the status selection when none is given.
var DefaultStatuses = []string{simplecontent.StatusUploaded}

// Filter selects contents. Lists select any of their values; an empty
// list selects everything, except MIME and Statuses, which default to
// DefaultMIME and DefaultStatuses.
type Filter struct {
	Tenants []string
	Owners  []string
	// MIME holds types or globs (image/*; * selects every type), matched
	// case-insensitively without parameters.
	MIME []string
	// CreatedAfter and CreatedBefore bound the creation time:
	// CreatedAfter <= created_at < CreatedBefore (zero: unbounded).
	CreatedAfter, CreatedBefore time.Time
	Statuses                    []string
	// MissingOCR skips contents with a current result for the current
	// idempotency key.
	MissingOCR bool
	// Stale selects only contents whose current results all carry another
	// key (made by another model, mode or pipeline version).
	Stale bool
}

// withDefaults fills the defaulted lists and normalises the rest.
func (f Filter) withDefaults() Filter {
	if len(f.MIME) == 0 {
		f.MIME = DefaultMIME
	}
	if len(f.Statuses) == 0 {
		f.Statuses = DefaultStatuses
	}
	lower := func(in []string) []string {
		out := make([]string, 0, len(in))
		for _, s := range in {
			if s = strings.ToLower(strings.TrimSpace(s)); s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		slices.Sort(out)
		return out
	}
	f.Tenants, f.Owners, f.MIME, f.Statuses = lower(f.Tenants), lower(f.Owners), lower(f.MIME), lower(f.Statuses)
	return f
}

// Validate checks the filter's values.
func (f Filter) Validate() error {
	for _, g := range f.MIME {
		if _, err := path.Match(strings.ToLower(g), "x/y"); err != nil {
			return fmt.Errorf("--mime %q: %w", g, err)
		}
	}
	if !f.CreatedAfter.IsZero() && !f.CreatedBefore.IsZero() && !f.CreatedAfter.Before(f.CreatedBefore) {
		return fmt.Errorf("--created-after %s is not before --created-before %s",
			f.CreatedAfter.Format(time.RFC3339), f.CreatedBefore.Format(time.RFC3339))
	}
	return nil
}

// MatchMIME reports whether type t is selected by one of the globs.
func MatchMIME(globs []string, t string) bool {
	t, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(t)), ";")
	t = strings.TrimSpace(t)
	for _, g := range globs {
		g = strings.ToLower(strings.TrimSpace(g))
		if g == "*" || g == "*/*" {
			return true
		}
		if ok, _ := path.Match(g, t); ok && t != "" {
			return true
		}
	}
	return false
}

// Check returns why f does not select it, or "" when it does. key is the
// current idempotency key of the item.
func (f Filter) Check(it Item, key string) string {
	switch {
	case it.Missing != "":
		return it.Missing
	case it.Derived:
		return ReasonDerived
	case !slices.Contains(f.Statuses, strings.ToLower(it.Status)):
		return ReasonStatus
	case len(f.Tenants) > 0 && !slices.Contains(f.Tenants, strings.ToLower(it.TenantID)):
		return ReasonTenant
	case len(f.Owners) > 0 && !slices.Contains(f.Owners, strings.ToLower(it.OwnerID)):
		return ReasonOwner
	case !f.CreatedAfter.IsZero() && it.CreatedAt.Before(f.CreatedAfter),
		!f.CreatedBefore.IsZero() && !it.CreatedAt.Before(f.CreatedBefore):
		return ReasonCreated
	case !MatchMIME(f.MIME, it.MIME):
		return ReasonMIME
	}
	current, other := false, false
	for _, r := range it.Results {
		if !r.Current() {
			continue
		}
		if r.Key == key {
			current = true
		} else {
			other = true
		}
	}
	switch {
	case f.MissingOCR && current:
		return ReasonHasOCR
	case f.Stale && (current || !other):
		return ReasonNotStale
	}
	return ""
}

// MIMEOf returns a content's MIME type: the recorded one, else the one its
// file name's extension implies, else "".
func MIMEOf(recorded, name string) string {
	if recorded = strings.TrimSpace(recorded); recorded != "" {
		return recorded
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case "":
		return ""
	case ".docx":
		return MIMEDocx
	case ".pptx":
		return MIMEPptx
	case ".xlsx":
		return MIMEXlsx
	}
	t, _, _ := strings.Cut(mime.TypeByExtension(filepath.Ext(name)), ";")
	return t
}

// JobID is the id of the backfill job of contentID under idempotency key
// key: "bf-" + content id + "-" + the first 8 hex digits of the key's
// SHA-256. The same content and model always name the same job, so a
// re-run finds its claim; a new model names a new one.
func JobID(contentID, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "bf-" + contentID + "-" + hex.EncodeToString(sum[:4])
}

// isOurs reports whether a derived content's metadata marks it as one of
// ocrflow's results.
func isOurs(meta map[string]any) bool {
	g, _ := meta[simplecontent.MetaGenerator].(string)
	v, _ := meta[simplecontent.MetaVariant].(string)
	return g == simplecontent.Generator && v == simplecontent.DerivationType
}

// resultOf reads a result from a derived content's metadata.
func resultOf(id, status string, meta map[string]any) Result {
	key, _ := meta[simplecontent.MetaIdempotencyKey].(string)
	state, _ := meta[simplecontent.MetaState].(string)
	return Result{ID: id, Key: key, State: state, Status: status}
}
