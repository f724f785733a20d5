// Package recognize is the second stage: it turns one rendered page into
// markdown with the recognition engine (or takes the page's own text) and
// reports it to finalize.
package recognize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// Source is the event source of events recognize emits.
const Source = "/ocrflow/recognize"

// EngineTextLayer is recorded as engine_used for pages that took their own
// text layer.
const EngineTextLayer = "text-layer"

// Engine recognizes a page image.
type Engine interface {
	Recognize(ctx context.Context, p engine.Page) (engine.Result, error)
	Name() string
}

// Config configures the stage.
type Config struct {
	// PageTimeout bounds one engine call unless the job's timeout_seconds
	// hint says otherwise (default 30 s).
	PageTimeout time.Duration
	// RetryWindow stands in for a delivery count the transport does not
	// report (Knative sends none): a page event at least this old (by its
	// CloudEvents time) is on its last delivery, so a fallback engine may
	// answer it (stage.LastAttempt). Set it to the sum of the recognize
	// Trigger's backoffs; 0 leaves the delivery count unknown.
	RetryWindow time.Duration
	// Tracer starts the span of each engine call, under the handling's
	// span (default: a no-op tracer).
	Tracer trace.Tracer
}

// Recognizer is the recognize stage.
type Recognizer struct {
	cfg    Config
	blobs  scratch.Store
	engine Engine
	log    *slog.Logger

	// modes caches each job's mode hint: its manifest is created once and
	// never changed, and decoding it for every page costs O(pages) per
	// page. Bounded by maxModes (cleared when full).
	modesMu sync.Mutex
	modes   map[string]string
}

// maxModes bounds the jobs whose mode hint a recognizer remembers.
const maxModes = 1024

// New returns the recognize stage.
func New(cfg Config, blobs scratch.Store, eng Engine, log *slog.Logger) *Recognizer {
	if cfg.PageTimeout <= 0 {
		cfg.PageTimeout = 30 * time.Second
	}
	if cfg.Tracer == nil {
		cfg.Tracer = obs.NoopTracer()
	}
	return &Recognizer{cfg: cfg, blobs: blobs, engine: eng, log: log, modes: map[string]string{}}
}

// Handle recognizes the page of one ocr.page.rendered event and replies
// ocr.page.recognized. It is idempotent: a page that already has a record
// is answered from it without calling the engine. A page the engine cannot
// read (a permanent failure) is recorded as failed, so the job still
// finishes with an explicit placeholder; transient failures are returned
// for the transport to retry.
func (s *Recognizer) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var p events.PageRendered
	if err := events.Decode(e, &p); err != nil {
		return nil, failure.As(failure.ErrPermanent, err)
	}
	if p.JobID == "" || p.Page < 1 {
		return nil, failure.Permanent("page event %s names no job or page", e.ID())
	}
	rec, done, err := scratch.GetRecord(ctx, s.blobs, p.JobID, p.Page)
	if err != nil {
		return nil, err
	}
	if !done {
		if stage.MaxAttempts(ctx) == 0 && s.cfg.RetryWindow > 0 && !e.Time().IsZero() && time.Since(e.Time()) >= s.cfg.RetryWindow {
			ctx = stage.WithMaxAttempts(stage.WithAttempt(ctx, 1), 1)
		}
		rec, err = s.recognize(ctx, e, p)
		if failure.Retryable(err) {
			return nil, err
		}
		if err != nil {
			rec = scratch.PageRecord{
				Page: p.Page, Status: events.PageFailed, Route: p.Route, Engine: s.engine.Name(),
				Reason: failedReason(err), EventID: e.ID(),
				WidthPt: p.WidthPt, HeightPt: p.HeightPt, WidthPx: p.Width, HeightPx: p.Height, ImageKey: p.ImageKey,
			}
			s.keepRaw(ctx, p, err)
			s.log.WarnContext(ctx, "page failed", "job", p.JobID, "page", p.Page, "reason", rec.Reason)
		}
		if err := scratch.PutRecord(ctx, s.blobs, p.JobID, rec); err != nil {
			return nil, err
		}
	}
	return scratch.RecognizedEvent(&e, Source, p.JobID, p.Pages, rec)
}

func (s *Recognizer) recognize(ctx context.Context, e event.Event, p events.PageRendered) (scratch.PageRecord, error) {
	rec := scratch.PageRecord{
		Page: p.Page, Status: events.PageOK, Route: p.Route, EventID: e.ID(), TextScore: p.TextScore,
		WidthPt: p.WidthPt, HeightPt: p.HeightPt, WidthPx: p.Width, HeightPx: p.Height, ImageKey: p.ImageKey,
	}
	var res engine.Result
	switch p.Route {
	case events.RouteText:
		md, err := scratch.GetBytes(ctx, s.blobs, p.TextKey)
		if err != nil {
			return rec, err
		}
		res = engine.Result{Markdown: string(md)}
		rec.Engine = EngineTextLayer
		if rec.BlocksKey, rec.BlockCount, err = s.textLayout(ctx, p); err != nil {
			return rec, err
		}
	default:
		img, err := scratch.GetBytes(ctx, s.blobs, p.ImageKey)
		if err != nil {
			return rec, fmt.Errorf("page image: %w", err)
		}
		timeout := s.cfg.PageTimeout
		if p.TimeoutSeconds > 0 {
			timeout = time.Duration(p.TimeoutSeconds) * time.Second
		}
		mode, err := s.modeHint(ctx, p.JobID)
		if err != nil {
			return rec, err
		}
		ectx, cancel := context.WithTimeout(ctx, timeout)
		ectx, span := s.cfg.Tracer.Start(ectx, "engine", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("ocrflow.engine", s.engine.Name()), obs.AttrPage.Int(p.Page)))
		start := time.Now()
		res, err = s.engine.Recognize(ectx, engine.Page{
			JobID: p.JobID, Number: p.Page, Image: img, MIME: "image/jpeg", Width: p.Width, Height: p.Height, Mode: mode,
		})
		if res.Engine != "" {
			span.SetAttributes(attribute.String("ocrflow.engine_used", res.Engine))
		}
		obs.EndSpan(span, err)
		deadline := ectx.Err() != nil
		cancel()
		if err != nil {
			if deadline && ctx.Err() == nil {
				err = fmt.Errorf("engine deadline %s: %w", timeout, err)
			}
			return rec, fmt.Errorf("recognize page %d: %w", p.Page, err)
		}
		rec.Engine, rec.Fallback = res.Engine, res.Engine != ""
		if rec.Engine == "" {
			rec.Engine = s.engine.Name()
		}
		s.log.DebugContext(ctx, "recognized", "job", p.JobID, "page", p.Page, "engine", rec.Engine, "ms", time.Since(start).Milliseconds())
		if err := s.blobs.Put(ctx, scratch.PageKey(p.JobID, p.Page, "raw"), strings.NewReader(res.Raw)); err != nil {
			return rec, err
		}
		side := Layout(p, rec.Engine, res)
		rec.BlocksKey, rec.BlockCount = scratch.BlocksKey(p.JobID, p.Page), len(side.Blocks)
		if err := scratch.PutJSON(ctx, s.blobs, rec.BlocksKey, side); err != nil {
			return rec, err
		}
	}
	key := scratch.PageKey(p.JobID, p.Page, "md")
	if err := s.blobs.Put(ctx, key, bytes.NewReader([]byte(res.Markdown))); err != nil {
		return rec, err
	}
	rec.MarkdownKey = key
	return rec, nil
}

// textLayout returns the key and block count of the layout sidecar
// convert stored for a text page; none when the event names none (an
// event from before sidecars) or it is gone.
func (s *Recognizer) textLayout(ctx context.Context, p events.PageRendered) (string, int, error) {
	if p.BlocksKey == "" {
		return "", 0, nil
	}
	var l document.Layout
	err := scratch.GetJSON(ctx, s.blobs, p.BlocksKey, &l)
	if errors.Is(err, scratch.ErrNotFound) {
		s.log.WarnContext(ctx, "layout sidecar of a text page is gone", "job", p.JobID, "page", p.Page, "key", p.BlocksKey)
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("page %d layout: %w", p.Page, err)
	}
	return p.BlocksKey, len(l.Blocks), nil
}

// failedReason is the reason recorded for a failed page: an engine's
// give-up message as it is ("repetition: page 3: …"), else the error's
// class and message ("permanent: …").
func failedReason(err error) string {
	if _, msg, ok := engine.ReasonOf(err); ok {
		return failure.Message(errors.New(msg), failure.MaxReason)
	}
	return failure.Reason(err)
}

// keepRaw stores the model's last answer for a page the engine gave up
// on (e.g. the looping text), so the failure can be inspected. Best
// effort: the page fails either way.
func (s *Recognizer) keepRaw(ctx context.Context, p events.PageRendered, err error) {
	var g *engine.GiveUpError
	if !errors.As(err, &g) || g.Raw == "" {
		return
	}
	if perr := s.blobs.Put(ctx, scratch.PageKey(p.JobID, p.Page, "raw"), strings.NewReader(g.Raw)); perr != nil {
		s.log.WarnContext(ctx, "keep raw answer of a failed page", "job", p.JobID, "page", p.Page, "error", perr)
	}
}

// modeHint returns the job's resolution/mode hint from its manifest ("" if
// none). A job without a manifest has no hint.
func (s *Recognizer) modeHint(ctx context.Context, job string) (string, error) {
	s.modesMu.Lock()
	mode, ok := s.modes[job]
	s.modesMu.Unlock()
	if ok {
		return mode, nil
	}
	var m scratch.Manifest
	err := scratch.GetJSON(ctx, s.blobs, scratch.ManifestKey(job), &m)
	if errors.Is(err, scratch.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	mode = m.Hints["resolution"]
	s.modesMu.Lock()
	if len(s.modes) >= maxModes {
		clear(s.modes)
	}
	s.modes[job] = mode
	s.modesMu.Unlock()
	return mode, nil
}
