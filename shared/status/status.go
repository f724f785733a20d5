// Package status reads where a job is from its durable state in the
// scratch store (submitted record, manifest, page records, finalize lock,
// outcome): any process that shares BLOB_URL answers for any job, and
// nothing is kept in memory, so a restart or another replica loses
// nothing.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// State is where a job is.
type State string

// The states of a job, in the order it passes through them.
const (
	// Queued: accepted (submitted), not yet picked up by convert.
	Queued State = "queued"
	// Converting: convert is splitting the source into pages.
	Converting State = "converting"
	// Recognizing: every page is out; some are not recognized yet.
	Recognizing State = "recognizing"
	// Finalizing: every page is done; the result is being assembled.
	Finalizing State = "finalizing"
	// Completed and Failed are terminal.
	Completed State = "completed"
	Failed    State = "failed"
)

// Terminal reports whether s is a final state.
func (s State) Terminal() bool { return s == Completed || s == Failed }

// ErrUnknown means the scratch store holds nothing for the job: it was
// never accepted here, or its state has expired.
var ErrUnknown = errors.New("unknown job")

// Job is a job's status.
type Job struct {
	JobID        string `json:"job_id"`
	State        State  `json:"state"`
	ContentID    string `json:"content_id,omitempty"`
	TenantID     string `json:"tenant_id,omitempty"`
	OwnerID      string `json:"owner_id,omitempty"`
	SourceName   string `json:"source_name,omitempty"`
	SourceFormat string `json:"source_format,omitempty"`
	Pages        Pages  `json:"pages"`
	// FailedPages lists the pages that are placeholders, with reasons.
	FailedPages []events.FailedPage `json:"failed_pages,omitempty"`

	SubmittedAt *time.Time `json:"submitted_at,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// PagesPerSecond is the rate pages have been finishing at since the
	// job started; ETASeconds extrapolates it to the pages left.
	PagesPerSecond float64  `json:"pages_per_second,omitempty"`
	ETASeconds     *float64 `json:"eta_seconds,omitempty"`

	// ErrorType and ErrorMessage explain a failed job.
	ErrorType    string `json:"error_type,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
	// DerivedContentID is the stored result of a completed job.
	DerivedContentID string `json:"derived_content_id,omitempty"`
	// Reused is true when a completed job reused an earlier result.
	Reused bool `json:"reused,omitempty"`
	// ReplayedAs names the attempt that replays this job (dlq replay);
	// ReplayOf the job an attempt replays.
	ReplayedAs string `json:"replayed_as,omitempty"`
	ReplayOf   string `json:"replay_of,omitempty"`
}

// Pages counts a job's pages.
type Pages struct {
	// Total is the number of pages the job covers (its page range).
	Total int `json:"total"`
	// Rendered pages have left convert (as an image, text, or failed).
	Rendered int `json:"rendered"`
	// Done pages are finished, Failed the finished ones that failed.
	Done   int `json:"done"`
	Failed int `json:"failed"`
	// ByRoute splits the done pages that succeeded by how: text (their
	// own text layer), gpu (the engine) and fallback (the fallback engine).
	ByRoute map[string]int `json:"by_route"`
}

// Page routes in Pages.ByRoute.
const (
	RouteText     = "text"
	RouteGPU      = "gpu"
	RouteFallback = "fallback"
)

// reads bounds the record reads in flight for one status.
const reads = 16

// Read returns job's status as the scratch store has it, at time now (for
// the rate and the ETA). A job the store knows nothing of is ErrUnknown.
func Read(ctx context.Context, s scratch.Store, job string, now time.Time) (Job, error) {
	st := Job{JobID: job, Pages: Pages{ByRoute: map[string]int{RouteText: 0, RouteGPU: 0, RouteFallback: 0}}}
	known := false

	var sub scratch.Submitted
	switch err := scratch.GetJSON(ctx, s, scratch.SubmittedKey(job), &sub); {
	case err == nil:
		known = true
		st.SubmittedAt = at(sub.SubmittedAt)
		st.State = Queued
		st.fromJob(sub.Job)
	case !errors.Is(err, scratch.ErrNotFound):
		return st, fmt.Errorf("status %s: %w", job, err)
	}

	var m scratch.Manifest
	switch err := scratch.GetJSON(ctx, s, scratch.ManifestKey(job), &m); {
	case err == nil:
		known = true
		st.fromManifest(m)
	case !errors.Is(err, scratch.ErrNotFound):
		return st, fmt.Errorf("status %s: %w", job, err)
	}
	if !known {
		if _, ok, err := scratch.GetOutcome(ctx, s, job); err != nil || !ok {
			if err != nil {
				return st, fmt.Errorf("status %s: %w", job, err)
			}
			return st, fmt.Errorf("status %s: %w", job, ErrUnknown)
		}
	}

	if len(m.Pages) > 0 {
		if err := st.countPages(ctx, s, job, m); err != nil {
			return st, fmt.Errorf("status %s: %w", job, err)
		}
	}
	locked, err := s.Exists(ctx, scratch.LockKey(job))
	if err != nil {
		return st, fmt.Errorf("status %s: %w", job, err)
	}
	if locked && !st.State.Terminal() {
		st.State = Finalizing
	}
	o, ended, err := scratch.GetOutcome(ctx, s, job)
	if err != nil {
		return st, fmt.Errorf("status %s: %w", job, err)
	}
	if ended {
		if err := st.fromOutcome(o); err != nil {
			return st, fmt.Errorf("status %s: %w", job, err)
		}
	}
	var rp scratch.Replayed
	switch err := scratch.GetJSON(ctx, s, scratch.ReplayedKey(job), &rp); {
	case err == nil:
		st.ReplayedAs = rp.As
	case !errors.Is(err, scratch.ErrNotFound):
		return st, fmt.Errorf("status %s: %w", job, err)
	}
	st.estimate(now)
	return st, nil
}

// at returns a pointer to t in UTC, or nil for the zero time.
func at(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// touch moves UpdatedAt forward to t.
func (st *Job) touch(t time.Time) {
	if t.IsZero() {
		return
	}
	if st.UpdatedAt == nil || t.After(*st.UpdatedAt) {
		st.UpdatedAt = at(t)
	}
}

// fromJob fills what the accepted job event says.
func (st *Job) fromJob(raw json.RawMessage) {
	st.touch(timeOf(st.SubmittedAt))
	var e event.Event
	if json.Unmarshal(raw, &e) != nil {
		return
	}
	var d struct {
		File struct {
			ID         string         `json:"id"`
			TenantID   string         `json:"tenant_id"`
			OwnerID    string         `json:"owner_id"`
			Name       string         `json:"name"`
			Attributes map[string]any `json:"attributes"`
		} `json:"file"`
		Hints map[string]string `json:"hints"`
	}
	if json.Unmarshal(e.Data(), &d) != nil {
		return
	}
	st.ContentID = d.File.ID
	if id, ok := d.File.Attributes["content_id"].(string); ok && id != "" {
		st.ContentID = id
	}
	st.TenantID, st.OwnerID, st.SourceName = d.File.TenantID, d.File.OwnerID, d.File.Name
	st.ReplayOf = d.Hints["replay_of"]
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// fromManifest fills what convert found.
func (st *Job) fromManifest(m scratch.Manifest) {
	st.State = Converting
	st.ContentID, st.TenantID, st.OwnerID = first(m.ContentID, st.ContentID), first(m.TenantID, st.TenantID), first(m.OwnerID, st.OwnerID)
	st.SourceName, st.SourceFormat = first(m.SourceName, st.SourceName), m.SourceFormat
	st.Pages.Total = len(m.Pages)
	st.StartedAt = at(m.StartedAt)
	st.touch(m.StartedAt)
	if r := m.Hints["replay_of"]; r != "" {
		st.ReplayOf = r
	}
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// countPages counts rendered and finished pages and reads the records of
// the finished ones (concurrently, at most reads at a time).
func (st *Job) countPages(ctx context.Context, s scratch.Store, job string, m scratch.Manifest) error {
	keys, err := s.List(ctx, scratch.PagesPrefix(job))
	if err != nil {
		return err
	}
	wanted := make(map[int]bool, len(m.Pages))
	for _, n := range m.Pages {
		wanted[n] = true
	}
	rendered := map[int]bool{}
	var done []int
	for _, k := range keys {
		name := strings.TrimPrefix(k, scratch.PagesPrefix(job))
		num, ext, _ := strings.Cut(name, ".")
		n, err := strconv.Atoi(num)
		if err != nil || !wanted[n] {
			continue
		}
		switch ext {
		case "jpg", "png", "text.md":
			rendered[n] = true
		case "json":
			rendered[n] = true
			done = append(done, n)
		}
	}
	st.Pages.Rendered = len(rendered)
	sort.Ints(done) // keys sort as text: 10 before 2

	recs := make([]scratch.PageRecord, len(done))
	found := make([]bool, len(done))
	errs := make([]error, len(done))
	sem := make(chan struct{}, reads)
	var wg sync.WaitGroup
	for i, n := range done {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			recs[i], found[i], errs[i] = scratch.GetRecord(ctx, s, job, n)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, r := range recs {
		if !found[i] {
			continue // listed, then gone: the job's state is being removed
		}
		st.Pages.Done++
		st.touch(r.DoneAt)
		switch {
		case r.Status != events.PageOK:
			st.Pages.Failed++
			st.FailedPages = append(st.FailedPages, events.FailedPage{Page: r.Page, Reason: r.Reason})
		case r.Route == events.RouteText:
			st.Pages.ByRoute[RouteText]++
		case r.Fallback:
			st.Pages.ByRoute[RouteFallback]++
		default:
			st.Pages.ByRoute[RouteGPU]++
		}
	}
	switch {
	case st.Pages.Rendered < st.Pages.Total:
		st.State = Converting
	case st.Pages.Done < st.Pages.Total:
		st.State = Recognizing
	default:
		st.State = Finalizing
	}
	return nil
}

// fromOutcome fills what the terminal event says.
func (st *Job) fromOutcome(o scratch.Outcome) error {
	var e event.Event
	if err := json.Unmarshal(o.Event, &e); err != nil {
		return fmt.Errorf("outcome: %w", err)
	}
	st.FinishedAt = at(e.Time())
	st.touch(e.Time())
	switch e.Type() {
	case events.TypeJobCompleted:
		st.State = Completed
		var c events.JobCompleted
		if err := events.Decode(e, &c); err != nil {
			return err
		}
		st.DerivedContentID, st.Reused = c.DerivedContentID, c.Reused
		if st.Pages.Total == 0 {
			st.Pages.Total, st.Pages.Done, st.Pages.Rendered = c.PageCount, c.PageCount, c.PageCount
			for route, n := range c.PagesByRoute {
				st.Pages.ByRoute[route] = n
			}
		}
		if len(st.FailedPages) == 0 && len(c.FailedPages) > 0 {
			st.FailedPages, st.Pages.Failed = c.FailedPages, len(c.FailedPages)
		}
	default:
		st.State = Failed
		var f events.JobFailed
		if err := events.Decode(e, &f); err != nil {
			return err
		}
		st.ErrorType, st.ErrorMessage = f.ErrorType, f.Message
	}
	return nil
}

// estimate sets the page rate and, while pages remain, the ETA.
func (st *Job) estimate(now time.Time) {
	if st.StartedAt == nil || st.Pages.Done == 0 {
		return
	}
	end := now
	if st.State.Terminal() && st.FinishedAt != nil {
		end = *st.FinishedAt
	}
	elapsed := end.Sub(*st.StartedAt).Seconds()
	if elapsed <= 0 {
		return
	}
	st.PagesPerSecond = float64(st.Pages.Done) / elapsed
	if left := st.Pages.Total - st.Pages.Done; left > 0 && !st.State.Terminal() {
		eta := float64(left) / st.PagesPerSecond
		st.ETASeconds = &eta
	}
}
