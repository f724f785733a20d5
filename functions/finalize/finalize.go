// Package finalize is the fan-in stage: it counts finished pages, reports
// progress, and when every page is done exactly one instance assembles the
// document in page order, stores it, and reports the job completed.
package finalize

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Source is the event source of events finalize emits.
const Source = "/ocrflow/finalize"

// Storer stores the assembled document and returns its reference.
type Storer interface {
	Store(ctx context.Context, r content.Result) (string, error)
}

// Stage is the finalize stage.
type Stage struct {
	blobs  scratch.Store
	store  Storer
	recipe content.Recipe
	log    *slog.Logger
	now    func() time.Time
}

// New returns the finalize stage. The recipe (engine, model, mode,
// pipeline version) is recorded in the result's metadata and keys it.
func New(blobs scratch.Store, store Storer, recipe content.Recipe, log *slog.Logger) *Stage {
	return &Stage{blobs: blobs, store: store, recipe: recipe, log: log, now: time.Now}
}

// Handle counts the job's finished pages after one ocr.page.recognized.
// While pages are missing it replies ocr.job.progress; once all are done the
// instance that wins the lock (a conditional create) assembles and stores
// the document and replies ocr.job.completed. Losers, and events for jobs
// that already ended, reply nothing.
func (s *Stage) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var pr events.PageRecognized
	if err := events.Decode(e, &pr); err != nil {
		return nil, failure.As(failure.ErrPermanent, err)
	}
	reply, err := s.handle(ctx, e, pr)
	if err == nil || failure.Retryable(err) || pr.JobID == "" {
		return reply, err
	}
	return s.fail(ctx, e, pr.JobID, err)
}

func (s *Stage) handle(ctx context.Context, e event.Event, pr events.PageRecognized) (*event.Event, error) {
	if _, ended, err := scratch.GetOutcome(ctx, s.blobs, pr.JobID); err != nil {
		return nil, failure.As(failure.ErrTransient, err)
	} else if ended {
		return nil, nil
	}
	var m scratch.Manifest
	if err := scratch.GetJSON(ctx, s.blobs, scratch.ManifestKey(pr.JobID), &m); err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return nil, failure.Permanent("job %s has no manifest: its scratch state is gone", pr.JobID)
		}
		return nil, failure.As(failure.ErrTransient, err)
	}
	recs, err := scratch.Records(ctx, s.blobs, pr.JobID)
	if err != nil {
		return nil, failure.As(failure.ErrTransient, err)
	}
	done := 0
	for _, n := range m.Pages {
		if _, ok := recs[n]; ok {
			done++
		}
	}
	total := len(m.Pages)
	if done < total {
		ev, err := events.New(&e, events.ProgressID(pr.JobID, done), events.TypeJobProgress, Source, 0, pr.JobID,
			events.JobProgress{JobID: pr.JobID, PagesCompleted: done, TotalPages: total, Percent: done * 100 / total})
		return &ev, err
	}

	// Every page is done: exactly one instance assembles. The lock holds the
	// winning event's id, so a redelivery of that event resumes the work.
	if err := s.blobs.Create(ctx, scratch.LockKey(pr.JobID), strings.NewReader(e.ID())); err != nil {
		if !errors.Is(err, blob.ErrExists) {
			return nil, failure.As(failure.ErrTransient, err)
		}
		owner, err := scratch.GetBytes(ctx, s.blobs, scratch.LockKey(pr.JobID))
		if err != nil {
			return nil, failure.As(failure.ErrTransient, err)
		}
		if string(owner) != e.ID() {
			return nil, nil
		}
	}
	return s.complete(ctx, e, m, recs)
}

func (s *Stage) complete(ctx context.Context, e event.Event, m scratch.Manifest, recs map[int]scratch.PageRecord) (*event.Event, error) {
	var doc strings.Builder
	byRoute := map[string]int{"gpu": 0, "text": 0}
	// engineUsed records, per page, the engine that answered it (the
	// primary, the fallback, or the text layer).
	engineUsed := map[string]string{}
	var failed []events.FailedPage
	for i, n := range m.Pages {
		r := recs[n]
		if r.Engine != "" {
			engineUsed[strconv.Itoa(n)] = r.Engine
		}
		if i > 0 {
			doc.WriteString(Separator)
		}
		doc.WriteString("<!-- page " + strconv.Itoa(n) + " -->\n\n")
		if r.Status != events.PageOK {
			failed = append(failed, events.FailedPage{Page: n, Reason: r.Reason})
			doc.WriteString(Placeholder(n, r.Reason))
			continue
		}
		md, err := scratch.GetBytes(ctx, s.blobs, r.MarkdownKey)
		if err != nil {
			return nil, failure.As(failure.ErrTransient, fmt.Errorf("page %d markdown: %w", n, err))
		}
		doc.WriteString(strings.TrimSpace(string(md)))
		doc.WriteString("\n")
		if r.Route == events.RouteText {
			byRoute["text"]++
		} else {
			byRoute["gpu"]++
		}
	}
	md := []byte(doc.String())
	if err := s.blobs.Put(ctx, scratch.ResultKey(m.JobID), strings.NewReader(doc.String())); err != nil {
		return nil, failure.As(failure.ErrTransient, err)
	}
	elapsed := s.now().Sub(m.StartedAt)
	ref, err := s.store.Store(ctx, content.Result{
		JobID: m.JobID, ContentID: m.ContentID, SourceName: m.SourceName, Markdown: md,
		IdempotencyKey: s.recipe.Key(m.ContentID, m.Hints["resolution"]),
		Metadata: map[string]any{
			"engine": s.recipe.Engine, "model": s.recipe.Model, "mode": s.recipe.ModeFor(m.Hints["resolution"]),
			"pipeline_version": s.recipe.PipelineVersion, "source_format": m.SourceFormat, "page_count": len(m.Pages),
			"pages_by_route": byRoute, "failed_pages": failed, "processing_time_ms": elapsed.Milliseconds(),
			"engine_used": engineUsed,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("store result: %w", err)
	}
	ev, err := events.New(&e, events.CompletedID(m.JobID), events.TypeJobCompleted, Source, 0, m.JobID, events.JobCompleted{
		JobID: m.JobID, ContentID: m.ContentID, DerivedContentID: ref, PageCount: len(m.Pages),
		PagesByRoute: byRoute, FailedPages: failed, ProcessingTimeMS: elapsed.Milliseconds(), EngineUsed: engineUsed,
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("job completed", "job", m.JobID, "pages", len(m.Pages), "failed_pages", len(failed), "result", ref)
	return scratch.End(ctx, s.blobs, m.JobID, ev)
}

func (s *Stage) fail(ctx context.Context, e event.Event, job string, cause error) (*event.Event, error) {
	ev, err := events.Failed(&e, Source, job, "", string(failure.Classify(cause)), failure.Message(cause, 700), 0)
	if err != nil {
		return nil, err
	}
	if err := s.recordFailure(ctx, job, cause); err != nil {
		return nil, err
	}
	return scratch.End(ctx, s.blobs, job, ev)
}

// Separator goes between pages of the assembled document.
const Separator = "\n---\n\n"

// Placeholder is the text a failed page is replaced with, so a reader (and
// a program) sees the gap instead of silently missing text.
func Placeholder(page int, reason string) string {
	reason = strings.ReplaceAll(reason, "-->", "->")
	return fmt.Sprintf("> **[ocrflow: page %d could not be recognized]**\n<!-- ocrflow:failed-page %d reason: %s -->\n", page, page, reason)
}
