// Package finalize is the fan-in stage: it counts finished pages, reports
// progress, and when every page is done exactly one instance assembles the
// document in page order, stores it, and reports the job completed.
package finalize

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Source is the event source of events finalize emits.
const Source = "/ocrflow/finalize"

// Storer stores the assembled document and returns its reference.
type Storer interface {
	Store(ctx context.Context, r content.Result) (string, error)
}

// Finalizer is the finalize stage.
type Finalizer struct {
	blobs  scratch.Store
	store  Storer
	recipe content.Recipe
	log    *slog.Logger
	now    func() time.Time
	tracer trace.Tracer
	cfg    Config
	// progress throttles progress events per job (this process only).
	progress *throttle
	// tallies count each running job's finished pages (tally.go).
	tallies *tallies
}

// Config configures the stage.
type Config struct {
	// Recipe (engine, model, mode, pipeline version) is recorded in the
	// result's metadata and keys it.
	Recipe content.Recipe
	// Tracer starts the span of each result's store, under the handling's
	// span (default: a no-op tracer).
	Tracer trace.Tracer
	// MaxPageErrorRate is the share of a job's pages (0–1) that may fail
	// and the job still complete with placeholders; above it the job
	// fails with error_type pages_failed. A job's max_page_error_rate hint
	// overrides it. The zero value lets no page fail.
	MaxPageErrorRate float64
	// ProgressInterval and ProgressPages throttle ocr.job.progress: one
	// per job from this process at most every ProgressInterval, unless
	// ProgressPages more pages finished since the last (zero values: one
	// per finished page).
	ProgressInterval time.Duration
	ProgressPages    int
	// TempDir holds the temporary copy of a kept source (default
	// os.TempDir()).
	TempDir string
	// LockLease is how long the delivery that took a job's finalize lock
	// is trusted to be working on it; a delivery of the same event that
	// finds an older lock takes the work over (its holder is gone).
	// Keep it above the finalize Trigger's delivery timeout, after which
	// the holder's handling is cancelled (default 45 s).
	LockLease time.Duration
}

// New returns the finalize stage.
func New(cfg Config, blobs scratch.Store, store Storer, log *slog.Logger) *Finalizer {
	if cfg.Tracer == nil {
		cfg.Tracer = obs.NoopTracer()
	}
	if cfg.LockLease <= 0 {
		cfg.LockLease = DefaultLockLease
	}
	return &Finalizer{cfg: cfg, blobs: blobs, store: store, recipe: cfg.Recipe, log: log, now: time.Now, tracer: cfg.Tracer,
		progress: newThrottle(cfg.ProgressInterval, cfg.ProgressPages), tallies: newTallies()}
}

// Handle counts the job's finished pages after one ocr.page.recognized.
// While pages are missing it replies ocr.job.progress; once all are done the
// instance that wins the lock (a conditional create) assembles and stores
// the document and replies ocr.job.completed. Losers, and events for jobs
// that already ended, reply nothing.
func (s *Finalizer) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
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

func (s *Finalizer) handle(ctx context.Context, e event.Event, pr events.PageRecognized) (*event.Event, error) {
	if again, ended, err := scratch.Ended(ctx, s.blobs, pr.JobID, e.ID()); err != nil || ended {
		return again, err
	}
	t, err := s.tallies.of(ctx, s.blobs, pr.JobID)
	if err != nil {
		return nil, err
	}
	done, all, err := t.finished(ctx, s.blobs, pr.Page)
	if err != nil {
		return nil, err
	}
	m, total := t.m, len(t.m.Pages)
	if !all {
		if !s.progress.due(pr.JobID, done, s.now()) {
			return nil, nil
		}
		// Pages other instances finished are known here only in order:
		// a progress event, at most one a second, counts them all.
		if done, err = t.list(ctx, s.blobs); err != nil {
			return nil, err
		}
		ev, err := events.New(&e, events.ProgressID(pr.JobID, done), events.TypeJobProgress, Source, 0, pr.JobID,
			events.JobProgress{JobID: pr.JobID, PagesCompleted: done, TotalPages: total, Percent: done * 100 / total, Seq: done})
		return &ev, err
	}
	s.tallies.forget(pr.JobID)
	s.progress.forget(pr.JobID)

	// Every page is done: exactly one delivery assembles (lock.go).
	if ok, err := s.lock(ctx, e, pr.JobID); err != nil || !ok {
		return nil, err
	}
	recs, err := s.records(ctx, m)
	if err != nil {
		s.unlock(ctx, pr.JobID, e)
		return nil, err
	}
	reply, err := s.complete(ctx, e, m, recs)
	if err != nil && failure.Retryable(err) {
		s.unlock(ctx, pr.JobID, e) // the retry may take it at once
	}
	return reply, err
}

// records reads the record of every page of job m, once all are done.
func (s *Finalizer) records(ctx context.Context, m scratch.Manifest) (map[int]scratch.PageRecord, error) {
	recs, err := scratch.Records(ctx, s.blobs, m.JobID)
	if err != nil {
		return nil, err
	}
	for _, n := range m.Pages {
		if _, ok := recs[n]; !ok {
			return nil, failure.Transient("job %s: page %d has a record key but no readable record", m.JobID, n)
		}
	}
	return recs, nil
}

func (s *Finalizer) complete(ctx context.Context, e event.Event, m scratch.Manifest, recs map[int]scratch.PageRecord) (*event.Event, error) {
	if failed, over := s.overRate(m, recs); over {
		return s.failPages(ctx, e, m, failed)
	}
	byRoute := map[string]int{"gpu": 0, "text": 0}
	// engineUsed records, per page, the engine that answered it (the
	// primary, the fallback, or the text layer).
	engineUsed := map[string]string{}
	var failed []events.FailedPage
	for _, n := range m.Pages {
		r := recs[n]
		if r.Engine != "" {
			engineUsed[strconv.Itoa(n)] = r.Engine
		}
		switch {
		case r.Status != events.PageOK:
			failed = append(failed, events.FailedPage{Page: n, Route: r.Route, Reason: r.Reason})
		case r.Route == events.RouteText:
			byRoute["text"]++
		default:
			byRoute["gpu"]++
		}
	}
	inside := inlined(m, recs)
	// The markdown is always made (the other outputs are made of the same
	// pages). Like them it is written to the scratch store page by page
	// and handed on as a stream: no document is ever whole in memory.
	md, err := s.stream(ctx, scratch.ResultKey(m.JobID), job.OutputMarkdown, func(w io.Writer) error {
		return s.writeMarkdown(ctx, w, m, recs, inside)
	})
	if err != nil {
		return nil, fmt.Errorf("markdown: %w", err)
	}
	finished := s.now()
	elapsed := finished.Sub(m.StartedAt)
	outs, unavailable, extra, err := s.outputs(ctx, m, recs, inside, md, finished)
	if err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		outs = []content.Output{md} // every output asked for is unavailable: the markdown is stored
	}
	sctx, span := s.tracer.Start(ctx, "store", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int64("ocrflow.result_bytes", md.Size)))
	stored, err := s.storeResult(sctx, content.Result{
		JobID: m.JobID, ContentID: m.ContentID, SourceName: m.SourceName,
		Outputs: outs, Unavailable: unavailable,
		IdempotencyKey: s.recipe.Key(m.ContentID, m.Hints["resolution"]),
		Metadata: withExtra(map[string]any{
			"engine": s.recipe.Engine, "model": s.recipe.Model, "mode": s.recipe.ModeFor(m.Hints["resolution"]),
			"pipeline_version": s.recipe.PipelineVersion, "source_format": m.SourceFormat, "page_count": len(m.Pages),
			"pages_by_route": byRoute, "failed_pages": failed, "processing_time_ms": elapsed.Milliseconds(),
			"engine_used": engineUsed,
		}, extra),
	}, md)
	obs.EndSpan(span, err)
	if err != nil {
		return nil, fmt.Errorf("store result: %w", err)
	}
	ref := stored.Ref
	ev, err := events.New(&e, events.CompletedID(m.JobID), events.TypeJobCompleted, Source, 0, m.JobID, events.JobCompleted{
		JobID: m.JobID, ContentID: m.ContentID, DerivedContentID: ref, PageCount: len(m.Pages),
		PagesByRoute: byRoute, FailedPages: failed, ProcessingTimeMS: elapsed.Milliseconds(), EngineUsed: engineUsed,
		DerivedContents: stored.Refs, UnavailableOutputs: unavailable,
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "job completed", "job", m.JobID, "pages", len(m.Pages), "failed_pages", len(failed), "result", ref)
	return scratch.End(ctx, s.blobs, m.JobID, e, ev)
}

// writeMarkdown writes job m's markdown to w in page order, one page at a
// time: only the page being written (with the pictures shown on it) is
// in memory.
func (s *Finalizer) writeMarkdown(ctx context.Context, w io.Writer, m scratch.Manifest, recs map[int]scratch.PageRecord, in inline) error {
	// text returns page n's markdown, or the placeholder of a failed page.
	text := func(n int) (string, error) {
		r := recs[n]
		if r.Status != events.PageOK {
			return Placeholder(n, r.Reason), nil
		}
		md, err := scratch.GetBytes(ctx, s.blobs, r.MarkdownKey)
		if err != nil {
			return "", fmt.Errorf("page %d markdown: %w", n, err)
		}
		return strings.TrimSpace(string(md)) + "\n", nil
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	written := 0
	for _, n := range m.Pages {
		if _, ok := in.host[n]; ok {
			continue // written inside its host page
		}
		md, err := text(n)
		if err != nil {
			return err
		}
		for _, p := range in.pictures[n] {
			pic, err := text(p)
			if err != nil {
				return err
			}
			md = placeInline(md, m.Inline[p].Name, pic)
		}
		if written > 0 {
			if _, err := bw.WriteString(Separator); err != nil {
				return err
			}
		}
		written++
		if _, err := bw.WriteString("<!-- page " + strconv.Itoa(n) + " -->\n\n" + md); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func (s *Finalizer) fail(ctx context.Context, e event.Event, job string, cause error) (*event.Event, error) {
	ev, err := events.Failed(&e, Source, job, "", string(failure.Classify(cause)), failure.Text(cause), 0)
	if err != nil {
		return nil, err
	}
	if err := s.recordFailure(ctx, job, cause); err != nil {
		return nil, err
	}
	return scratch.End(ctx, s.blobs, job, e, ev)
}

// inline is where picture pages go: pictures[host] lists the picture pages
// shown on host, in order; host[picture] is the reverse.
type inline struct {
	pictures map[int][]int
	host     map[int]int
}

// inlined decides which picture pages fold into their host page: those
// whose host is a page of the job that came out fine. A picture whose host
// was left out (a page range) or failed stays a page of its own.
func inlined(m scratch.Manifest, recs map[int]scratch.PageRecord) inline {
	in := inline{pictures: map[int][]int{}, host: map[int]int{}}
	if len(m.Inline) == 0 {
		return in
	}
	selected := map[int]bool{}
	for _, n := range m.Pages {
		selected[n] = true
	}
	for _, n := range m.Pages {
		ref, ok := m.Inline[n]
		if !ok || !selected[ref.Page] || recs[ref.Page].Status != events.PageOK {
			continue
		}
		in.pictures[ref.Page] = append(in.pictures[ref.Page], n)
		in.host[n] = ref.Page
	}
	return in
}

// placeInline puts a picture's text right after its placeholder
// "<!-- image: NAME -->" in the host page's markdown: as a paragraph, or
// folded onto one line when the placeholder sits in a table cell. Without
// a placeholder the text goes at the end of the page.
func placeInline(md, name, text string) string {
	ph := "<!-- image: " + name + " -->"
	text = strings.TrimSpace(text)
	i := strings.Index(md, ph)
	if i < 0 {
		return strings.TrimRight(md, "\n") + "\n\n" + ph + "\n\n" + text + "\n"
	}
	end := i + len(ph)
	lineStart := strings.LastIndexByte(md[:i], '\n') + 1
	if strings.HasPrefix(strings.TrimSpace(md[lineStart:i]), "|") {
		cell := strings.ReplaceAll(strings.ReplaceAll(text, "|", `\|`), "\n", "<br>")
		return md[:end] + " " + cell + md[end:]
	}
	return md[:end] + "\n\n" + text + md[end:]
}

// Separator goes between pages of the assembled document.
const Separator = "\n---\n\n"

// Placeholder is the text a failed page is replaced with, so a reader (and
// a program) sees the gap instead of silently missing text.
func Placeholder(page int, reason string) string {
	reason = strings.ReplaceAll(reason, "-->", "->")
	return fmt.Sprintf("> **[ocrflow: page %d could not be recognized]**\n<!-- ocrflow:failed-page %d reason: %s -->\n", page, page, reason)
}
