// Package autoocr turns a platform's "content uploaded" CloudEvent into an
// OCR job, for platforms that want every suitable upload OCRed without
// calling ocrflow themselves. It is optional (OCR_STAGES=…,autoocr and the
// Trigger in eventing/optional).
package autoocr

import (
	"context"
	"log/slog"
	"mime"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
)

// Source is the event source of the jobs autoocr emits.
const Source = "/ocrflow/autoocr"

// Upload is the data of a content-uploaded event. The field names follow
// simple-content's ContentResponse; producers may send more.
type Upload struct {
	ContentID string `json:"content_id"`
	ID        string `json:"id"`
	TenantID  string `json:"tenant_id"`
	OwnerID   string `json:"owner_id"`
	MIMEType  string `json:"mime_type"`
	FileName  string `json:"file_name"`
	// DerivationType is set on derived content; derived content (our own
	// markdown included) is never OCRed.
	DerivationType string `json:"derivation_type"`
}

// Policy decides which uploads are OCRed.
type Policy struct {
	// MIMETypes are accepted media types; "image/*" accepts every image.
	MIMETypes []string
	// Tenants, when not empty, is the allow list ("*" = every tenant).
	Tenants []string
	// ExcludeTenants never get automatic OCR.
	ExcludeTenants []string
}

// DefaultMIMETypes are the types OCRed automatically by default.
var DefaultMIMETypes = []string{"application/pdf", "image/*"}

// Accepts reports whether u should be OCRed, and why not.
func (p Policy) Accepts(u Upload) (bool, string) {
	if u.DerivationType != "" && u.DerivationType != "original" {
		return false, "derived content"
	}
	if slices.Contains(p.ExcludeTenants, u.TenantID) {
		return false, "tenant " + u.TenantID + " has automatic OCR off"
	}
	if len(p.Tenants) > 0 && !slices.Contains(p.Tenants, "*") && !slices.Contains(p.Tenants, u.TenantID) {
		return false, "tenant " + u.TenantID + " is not enabled for automatic OCR"
	}
	mt, _, err := mime.ParseMediaType(u.MIMEType)
	if err != nil {
		return false, "no usable mime type"
	}
	types := p.MIMETypes
	if len(types) == 0 {
		types = DefaultMIMETypes
	}
	for _, want := range types {
		if want == mt || (strings.HasSuffix(want, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(want, "*"))) {
			return true, ""
		}
	}
	return false, "mime type " + mt + " is not OCRed automatically"
}

// Submitter is the autoocr stage.
type Submitter struct {
	policy Policy
	log    *slog.Logger
}

// New returns the autoocr stage.
func New(p Policy, log *slog.Logger) *Submitter { return &Submitter{policy: p, log: log} }

// Handle replies a simpleprocess.job for an accepted upload and nothing
// otherwise. The job id is derived from the content id, so a redelivered
// upload event makes the same job (and the pipeline's idempotency does the
// rest).
func (s *Submitter) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var u Upload
	if err := events.Decode(e, &u); err != nil {
		return nil, failure.As(failure.ErrPermanent, err)
	}
	if u.ContentID == "" {
		u.ContentID = u.ID
	}
	if u.ContentID == "" {
		s.log.InfoContext(ctx, "upload event names no content; ignored", "id", e.ID())
		return nil, nil
	}
	if ok, why := s.policy.Accepts(u); !ok {
		s.log.DebugContext(ctx, "upload not OCRed", "content", u.ContentID, "reason", why)
		return nil, nil
	}
	id := "auto-" + u.ContentID
	if !job.ValidID(id) {
		s.log.WarnContext(ctx, "content id cannot name a job; ignored", "content", u.ContentID)
		return nil, nil
	}
	ev, err := job.NewEvent(job.Spec{
		ID: id, ContentID: u.ContentID, TenantID: u.TenantID, OwnerID: u.OwnerID, Name: u.FileName,
		Source: Source, Hints: map[string]string{"priority": string(job.PriorityNormal)},
	})
	if err != nil {
		return nil, err
	}
	return &ev, nil
}
