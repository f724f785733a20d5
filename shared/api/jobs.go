package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/status"
)

// SubmitRequest is the JSON form of POST /v1/jobs.
type SubmitRequest struct {
	// JobID names the job (default: generated).
	JobID string `json:"job_id,omitempty"`
	// ContentID is the source: a simple-content content id, or a path
	// under CONTENT_DIR for the directory content store.
	ContentID string `json:"content_id"`
	TenantID  string `json:"tenant_id,omitempty"`
	OwnerID   string `json:"owner_id,omitempty"`
	// Name is the source's file name, if the content store does not know it.
	Name string `json:"name,omitempty"`
	// Hints are job hints; string, boolean and number values are taken.
	Hints map[string]json.RawMessage `json:"hints,omitempty"`
}

// Accepted is the 202 answer of POST /v1/jobs.
type Accepted struct {
	JobID     string       `json:"job_id"`
	State     status.State `json:"state"`
	StatusURL string       `json:"status_url"`
	EventsURL string       `json:"events_url"`
}

// SubmittedBy names the API in the submitted record of the jobs it accepts.
const SubmittedBy = "api"

// submit accepts a job: the JSON form or a whole simpleprocess.job
// CloudEvent (structured or binary mode). It keeps the submitted record
// first, then publishes the job exactly as `ocrflow submit` does.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxJobBytes)
	e, ok := s.jobEvent(w, r)
	if !ok {
		return
	}
	j, err := job.Parse(e)
	if err != nil {
		s.writeProblem(w, r, http.StatusUnprocessableEntity, ProblemInvalidJob, failure.Text(err))
		return
	}
	if tenant, scoped := s.tenantOf(r); scoped && j.TenantID != tenant {
		s.writeProblem(w, r, http.StatusForbidden, ProblemForbidden,
			fmt.Sprintf("the job names tenant %q; this token submits for tenant %q only", j.TenantID, tenant))
		return
	}
	ctx := WithLogAttrs(r.Context(), slog.String("job", j.ID))
	exists, err := s.cfg.Scratch.Exists(ctx, scratch.SubmittedKey(j.ID))
	if err != nil {
		s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, "scratch store: "+failure.Text(err))
		return
	}
	if exists {
		w.Header().Set("Location", jobPath(j.ID))
		s.writeProblem(w, r, http.StatusConflict, ProblemConflict, fmt.Sprintf("job %s was submitted before; choose another job_id", j.ID))
		return
	}
	if err := scratch.Submit(ctx, s.cfg.Scratch, j.ID, SubmittedBy, e); err != nil {
		s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, "scratch store: "+failure.Text(err))
		return
	}
	if err := s.cfg.Publisher.Send(ctx, e); err != nil {
		s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, "publish the job: "+failure.Text(err))
		return
	}
	s.log.InfoContext(ctx, "job submitted", "content_id", j.ContentID, "job_tenant", j.TenantID)
	w.Header().Set("Location", jobPath(j.ID))
	writeJSON(w, http.StatusAccepted, Accepted{JobID: j.ID, State: status.Queued, StatusURL: jobPath(j.ID), EventsURL: jobPath(j.ID) + "/events"})
}

func jobPath(id string) string { return "/v1/jobs/" + id }

// jobEvent reads the job event of a POST /v1/jobs request, or answers
// the problem with it.
func (s *Server) jobEvent(w http.ResponseWriter, r *http.Request) (event.Event, bool) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case r.Header.Get("Ce-Specversion") != "" || mt == "application/cloudevents+json":
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			s.bodyProblem(w, r, fmt.Errorf("not a CloudEvent: %w", err))
			return event.Event{}, false
		}
		return *e, true
	case mt == "application/json" || ct == "":
		var req SubmitRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.bodyProblem(w, r, err)
			return event.Event{}, false
		}
		if dec.More() {
			s.bodyProblem(w, r, errors.New("the body holds more than one JSON value"))
			return event.Event{}, false
		}
		return s.fromRequest(w, r, req)
	default:
		s.writeProblem(w, r, http.StatusUnsupportedMediaType, ProblemUnsupportedMedia,
			fmt.Sprintf("Content-Type %q: send application/json, or a CloudEvent (application/cloudevents+json or binary mode)", ct))
		return event.Event{}, false
	}
}

// fromRequest builds the job event of the JSON form.
func (s *Server) fromRequest(w http.ResponseWriter, r *http.Request, req SubmitRequest) (event.Event, bool) {
	if strings.TrimSpace(req.ContentID) == "" {
		s.writeProblem(w, r, http.StatusBadRequest, ProblemMalformed, "content_id is required")
		return event.Event{}, false
	}
	if tenant, scoped := s.tenantOf(r); scoped && req.TenantID == "" {
		req.TenantID = tenant
	}
	hints := map[string]string{}
	for k, raw := range req.Hints {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			s.bodyProblem(w, r, err)
			return event.Event{}, false
		}
		switch v := v.(type) {
		case string:
			hints[k] = v
		case bool, float64:
			hints[k] = strings.TrimSpace(string(raw))
		default:
			s.writeProblem(w, r, http.StatusBadRequest, ProblemMalformed, fmt.Sprintf("hint %q must be a string, a boolean or a number", k))
			return event.Event{}, false
		}
	}
	if req.JobID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		req.JobID = "job-" + hex.EncodeToString(b)
	}
	e, err := job.NewEvent(job.Spec{
		ID: req.JobID, ContentID: req.ContentID, Name: req.Name, TenantID: req.TenantID, OwnerID: req.OwnerID,
		Hints: hints, Source: "ocrflow/api",
	})
	if err != nil {
		s.writeProblem(w, r, http.StatusUnprocessableEntity, ProblemInvalidJob, failure.Text(err))
		return event.Event{}, false
	}
	return e, true
}

// bodyProblem answers an unreadable body: 413 beyond the limit, else 400.
func (s *Server) bodyProblem(w http.ResponseWriter, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		s.writeProblem(w, r, http.StatusRequestEntityTooLarge, ProblemTooLarge, fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit))
		return
	}
	s.writeProblem(w, r, http.StatusBadRequest, ProblemMalformed, err.Error())
}

// readJob returns the status of the job the path names, or answers 404
// (an unknown job, or a job of another tenant) or 503.
func (s *Server) readJob(w http.ResponseWriter, r *http.Request) (status.Job, bool) {
	id := r.PathValue("id")
	if !job.ValidID(id) {
		s.writeProblem(w, r, http.StatusNotFound, ProblemNotFound, fmt.Sprintf("%q is not a job id", id))
		return status.Job{}, false
	}
	st, err := status.Read(r.Context(), s.cfg.Scratch, id, s.cfg.Now())
	switch {
	case errors.Is(err, status.ErrUnknown):
		s.writeProblem(w, r, http.StatusNotFound, ProblemNotFound, fmt.Sprintf("no job %s", id))
		return st, false
	case err != nil:
		s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, "scratch store: "+failure.Text(err))
		return st, false
	}
	if tenant, scoped := s.tenantOf(r); scoped && st.TenantID != tenant {
		s.writeProblem(w, r, http.StatusNotFound, ProblemNotFound, fmt.Sprintf("no job %s", id))
		return st, false
	}
	return st, true
}

// job answers the job's status (status.Read): any process that shares
// the scratch store answers the same.
func (s *Server) job(w http.ResponseWriter, r *http.Request) {
	st, ok := s.readJob(w, r)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
}

// jobEvents streams the job's lifecycle as Server-Sent Events: first a
// status event with its current status; then its lifecycle CloudEvents
// (with Follow) or a status event on every change (polling); and at the
// end its terminal event, after which the stream ends.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	// Follow before reading the status, so no event falls in between.
	var lifecycle <-chan event.Event
	if s.cfg.Follow != nil {
		var err error
		if lifecycle, err = s.cfg.Follow(ctx); err != nil {
			s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, "follow lifecycle events: "+failure.Text(err))
			return
		}
	}
	st, ok := s.readJob(w, r)
	if !ok {
		return
	}
	ctx = WithLogAttrs(ctx, slog.String("job", st.JobID))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sse := &sseWriter{w: w, rc: http.NewResponseController(w)}
	if err := sse.status(st); err != nil {
		return
	}
	if st.State.Terminal() {
		s.sendTerminal(ctx, sse, st.JobID)
		return
	}
	keep := time.NewTicker(s.cfg.KeepAlive)
	defer keep.Stop()
	var poll <-chan time.Time
	if lifecycle == nil {
		t := time.NewTicker(s.cfg.PollInterval)
		defer t.Stop()
		poll = t.C
	}
	last := comparable(st)
	for {
		select {
		case <-ctx.Done():
			return
		case <-keep.C:
			if sse.comment("keep-alive") != nil {
				return
			}
		case e, open := <-lifecycle:
			if !open {
				return
			}
			if id, _ := e.Extensions()[events.ExtJob].(string); id != st.JobID {
				continue
			}
			if sse.event(e) != nil || events.Terminal(e.Type()) {
				return
			}
		case <-poll:
			cur, err := status.Read(ctx, s.cfg.Scratch, st.JobID, s.cfg.Now())
			if err != nil {
				s.log.WarnContext(ctx, "status read failed; trying again", "error", err)
				continue
			}
			if c := comparable(cur); !bytes.Equal(c, last) {
				last = c
				if sse.status(cur) != nil {
					return
				}
			}
			if cur.State.Terminal() {
				s.sendTerminal(ctx, sse, st.JobID)
				return
			}
		}
	}
}

// sendTerminal sends the job's terminal event as its outcome keeps it.
func (s *Server) sendTerminal(ctx context.Context, sse *sseWriter, id string) {
	o, ok, err := scratch.GetOutcome(ctx, s.cfg.Scratch, id)
	if err != nil || !ok {
		s.log.WarnContext(ctx, "terminal event unavailable", "ok", ok, "error", err)
		return
	}
	var e event.Event
	if err := json.Unmarshal(o.Event, &e); err != nil {
		s.log.WarnContext(ctx, "terminal event unreadable", "error", err)
		return
	}
	_ = sse.event(e) // the stream ends either way
}

// comparable is st without what moves with the clock alone (rate, ETA).
func comparable(st status.Job) []byte {
	st.PagesPerSecond, st.ETASeconds = 0, nil
	b, _ := json.Marshal(st)
	return b
}

// sseWriter writes Server-Sent Events and flushes each one.
type sseWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

// EventStatus is the SSE event name of a status snapshot.
const EventStatus = "status"

func (s *sseWriter) status(st status.Job) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.send(EventStatus, "", b)
}

// event sends a lifecycle CloudEvent (structured JSON) named by its type.
func (s *sseWriter) event(e event.Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return s.send(e.Type(), e.ID(), b)
}

func (s *sseWriter) send(name, id string, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: " + name + "\n")
	if id != "" {
		b.WriteString("id: " + strings.NewReplacer("\n", "", "\r", "").Replace(id) + "\n")
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	if _, err := s.w.Write(b.Bytes()); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sseWriter) comment(text string) error {
	if _, err := io.WriteString(s.w, ": "+text+"\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}
