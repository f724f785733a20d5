package api

import (
	"encoding/json"
	"net/http"
)

// ProblemBase prefixes every problem type: each type is an anchor of the
// API documentation, which says what it means and what to do about it.
const ProblemBase = "https://github.com/ocrflow/ocrflow/blob/main/docs/api.md#problem-"

// Problem types (RFC 9457), by the slug that ends their URI.
const (
	ProblemMalformed        = "malformed-request"
	ProblemUnauthorized     = "unauthorized"
	ProblemForbidden        = "forbidden"
	ProblemNotFound         = "not-found"
	ProblemMethodNotAllowed = "method-not-allowed"
	ProblemNotAcceptable    = "not-acceptable"
	ProblemConflict         = "conflict"
	ProblemTooLarge         = "too-large"
	ProblemUnsupportedMedia = "unsupported-media-type"
	ProblemNotADocument     = "not-a-document"
	ProblemInvalidJob       = "invalid-job"
	ProblemUnprocessable    = "unprocessable-document"
	ProblemNotReady         = "not-ready"
	ProblemTimeout          = "timeout"
	ProblemInternal         = "internal"
)

// problemTitles are the fixed, human-readable summaries of the types.
var problemTitles = map[string]string{
	ProblemMalformed:        "Malformed request",
	ProblemUnauthorized:     "Missing or unknown bearer token",
	ProblemForbidden:        "Not allowed for this token",
	ProblemNotFound:         "Not found",
	ProblemMethodNotAllowed: "Method not allowed",
	ProblemNotAcceptable:    "No acceptable representation",
	ProblemConflict:         "Job already exists",
	ProblemTooLarge:         "Request body too large",
	ProblemUnsupportedMedia: "Unsupported media type",
	ProblemNotADocument:     "Not a supported document",
	ProblemInvalidJob:       "Invalid job",
	ProblemUnprocessable:    "Document cannot be processed",
	ProblemNotReady:         "Service not ready",
	ProblemTimeout:          "Timed out",
	ProblemInternal:         "Internal error",
}

// Problem is an RFC 9457 problem details object, with the request id as
// an extension member (and, for /readyz, the readiness checks).
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Checks are the readiness checks of a not-ready answer.
	Checks []CheckResult `json:"checks,omitempty"`
}

// ContentTypeProblem is the media type of problem details.
const ContentTypeProblem = "application/problem+json"

// newProblem returns the problem of type slug with status and detail,
// for request r.
func newProblem(r *http.Request, status int, slug, detail string) Problem {
	return Problem{
		Type: ProblemBase + slug, Title: problemTitles[slug], Status: status, Detail: detail,
		Instance: r.URL.Path, RequestID: RequestID(r.Context()),
	}
}

// writeProblem answers r with a problem of type slug.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, status int, slug, detail string) {
	s.sendProblem(w, r, newProblem(r, status, slug, detail))
}

func (s *Server) sendProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Status >= 500 {
		s.log.WarnContext(r.Context(), "request failed", "status", p.Status, "problem", p.Type, "detail", p.Detail)
	}
	w.Header().Set("Content-Type", ContentTypeProblem)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p) // the client may be gone; nothing to do
}

// writeJSON answers r with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}
