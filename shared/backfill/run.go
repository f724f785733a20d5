package backfill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/time/rate"

	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// ErrInterrupted is returned by Run when it stopped at Config.Interrupt,
// after finishing the batch in hand and writing the checkpoint.
var ErrInterrupted = errors.New("backfill interrupted")

// EventSource is the CloudEvents source of backfill jobs.
const EventSource = "ocrflow/backfill"

// ClaimedBy is how a backfill's claims name their submitter; the run id
// follows.
const ClaimedBy = "ocrflow backfill"

// Source enumerates contents in a stable order.
type Source interface {
	// Describe names the source (for the checkpoint's fingerprint).
	Describe() string
	// Next returns up to n items after `after`; fewer than n means the
	// source is exhausted. f is the whole filter: a source may apply parts
	// of it early, Run applies all of it to every item.
	Next(ctx context.Context, f Filter, after Cursor, n int) ([]Item, error)
	// Total estimates the items after `after` (-1: unknown).
	Total(ctx context.Context, f Filter, after Cursor) (int64, error)
}

// Config configures a backfill.
type Config struct {
	Source Source
	Filter Filter
	// Key returns the current idempotency key of a content
	// (app.RecipeFor(cfg, "").Key(id, "")).
	Key func(contentID string) string
	// Scratch holds the claims (jobs/<id>/submitted.json) and the jobs'
	// outcomes. Required unless DryRun (a dry run only reads claims).
	Scratch scratch.Store
	// Publisher sends the jobs (not used by a dry run).
	Publisher Publisher
	// Gauge reports the pipeline's backlog for MaxPending (optional; the
	// backfill's own jobs without an outcome always count).
	Gauge Gauge
	// Priority is the jobs' priority hint (default low).
	Priority job.Priority
	// Rate is the most jobs published per second (0: no limit).
	Rate float64
	// MaxPending pauses publishing while the backlog is at or above it
	// (0: no limit).
	MaxPending int
	// Poll is how often a paused backfill looks at the backlog again
	// (default 2s).
	Poll time.Duration
	// Batch is how many contents are read, claimed and checkpointed
	// together (default 100).
	Batch int
	// Limit stops this run after this many selected contents (0: all); a
	// resumed run continues after them, with a limit of its own.
	Limit int64
	// DryRun estimates instead of submitting: nothing is claimed, sent or
	// checkpointed.
	DryRun    bool
	Estimator Estimator
	// Checkpoint is the checkpoint file ("" for none: an interrupted run
	// cannot be resumed).
	Checkpoint string
	// Resume continues the backfill of Checkpoint.
	Resume bool
	// Interrupt, when closed, stops the backfill after the batch in hand
	// (SIGINT). Cancelling the context stops it at once (a second SIGINT);
	// the checkpoint then still lets a resumed run finish the batch.
	Interrupt <-chan struct{}
	// Progress, when set, is called as the backfill advances.
	Progress func(Progress)
	// OnSelect, when set, is called with each selected content, in the
	// source's order (before its claim: already submitted ones included).
	OnSelect func(Item)
	Log      *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Counts are a backfill's tallies. Scanned contents are either skipped
// (by reason), failed, or selected; selected ones are submitted, skipped
// as already_submitted, or failed.
type Counts struct {
	Scanned   int64 `json:"scanned"`
	Selected  int64 `json:"selected"`
	Submitted int64 `json:"submitted"`
	// Republished counts jobs of an interrupted batch published again on
	// resume (they were claimed, maybe not sent); JetStream drops those it
	// already holds.
	Republished int64            `json:"republished"`
	Failed      int64            `json:"failed"`
	Skipped     map[string]int64 `json:"skipped"`
}

func (c Counts) clone() Counts {
	c.Skipped = maps.Clone(c.Skipped)
	if c.Skipped == nil {
		c.Skipped = map[string]int64{}
	}
	return c
}

// Progress is a snapshot for progress reports.
type Progress struct {
	Counts
	// Total is the number of contents to scan in all (-1: unknown).
	Total   int64
	Elapsed time.Duration
	// Waiting is true while publishing is paused on the backlog.
	Waiting bool
	Backlog int
}

// Summary is a backfill's outcome.
type Summary struct {
	Counts
	DryRun   bool      `json:"dry_run"`
	Estimate *Estimate `json:"estimate,omitempty"`
	// FailedIDs are the first 1000 contents that failed.
	FailedIDs []string `json:"failed_ids,omitempty"`
	// Unpublished are jobs claimed but not confirmed published when the
	// run stopped on an error; a --resume publishes them.
	Unpublished []string  `json:"unpublished,omitempty"`
	Interrupted bool      `json:"interrupted"`
	Done        bool      `json:"done"`
	Resumed     bool      `json:"resumed"`
	Run         string    `json:"run,omitempty"`
	Checkpoint  string    `json:"checkpoint,omitempty"`
	Until       time.Time `json:"until"`
	Elapsed     float64   `json:"elapsed_seconds"`
}

const maxFailedIDs = 1000

type runner struct {
	cfg     Config
	f       Filter
	log     *slog.Logger
	cp      Checkpoint // committed state
	counts  Counts     // live
	failed  []string
	total   int64
	start   time.Time
	limiter *rate.Limiter
	// pending are the jobs a resumed run may publish again.
	pending map[string]bool
	// own are submitted jobs without a known outcome.
	own         map[string]bool
	gauge       int
	gaugeAt     time.Time
	lastBacklog int
	waiting     bool
	estimate    Estimate
	// inHand are the jobs of the batch in hand; published those of them
	// published so far.
	inHand, published []string
	// selected counts this run's selections (Limit is per run).
	selected int64
}

// Run runs the backfill cfg describes and returns its summary. The error
// is ErrInterrupted after an interrupt, the context's error after a hard
// stop, and any error that stopped the run (the checkpoint then still
// names the batch in hand, so --resume retries it).
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.check(); err != nil {
		return Summary{}, err
	}
	r := &runner{cfg: cfg, f: cfg.Filter.withDefaults(), log: cfg.Log, own: map[string]bool{}, pending: map[string]bool{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.start = cfg.Now()
	if err := r.open(); err != nil {
		return Summary{}, err
	}
	sum := Summary{DryRun: cfg.DryRun, Resumed: cfg.Resume, Run: r.cp.Run, Checkpoint: cfg.Checkpoint, Until: r.cp.Until}
	if r.cp.Done {
		r.log.Info("the checkpoint's backfill is complete: nothing to do", "checkpoint", cfg.Checkpoint)
		return r.summary(sum, true), nil
	}
	if !cfg.DryRun && !cfg.Resume {
		if err := r.save(r.cp); err != nil { // the run id and its time bound, from the start
			return sum, err
		}
	}
	if cfg.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	r.f.CreatedBefore = r.cp.Until
	if !cfg.Filter.CreatedBefore.IsZero() && cfg.Filter.CreatedBefore.Before(r.cp.Until) {
		r.f.CreatedBefore = cfg.Filter.CreatedBefore
	}
	r.total = -1
	if n, err := cfg.Source.Total(ctx, r.f, r.cp.Cursor); err != nil {
		r.log.Warn("cannot count the contents to scan; progress has no total", "error", err)
	} else if n >= 0 {
		r.total = r.cp.Counts.Scanned + n
	}
	err := r.loop(ctx)
	switch {
	case errors.Is(err, ErrInterrupted):
		sum.Interrupted = true
	case err != nil:
		sum.Unpublished = r.unpublished()
	}
	return r.summary(sum, err == nil), err
}

func (c *Config) check() error {
	switch {
	case c.Source == nil:
		return errors.New("backfill: a source is required")
	case c.Key == nil:
		return errors.New("backfill: an idempotency key function is required")
	case c.DryRun && (c.Checkpoint != "" || c.Resume):
		return errors.New("backfill: a dry run writes no checkpoint and resumes none")
	case !c.DryRun && c.Scratch == nil:
		return errors.New("backfill: a scratch store is required for the claims")
	case !c.DryRun && c.Publisher == nil:
		return errors.New("backfill: a publisher is required")
	case c.Resume && c.Checkpoint == "":
		return errors.New("backfill: --resume needs --checkpoint")
	case c.Rate < 0, c.MaxPending < 0, c.Limit < 0:
		return errors.New("backfill: rate, max-pending and limit must not be negative")
	}
	if err := c.Filter.Validate(); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	if c.Priority == "" {
		c.Priority = job.PriorityLow
	}
	switch c.Priority {
	case job.PriorityHigh, job.PriorityNormal, job.PriorityLow:
	default:
		return fmt.Errorf("backfill: priority %q is not high, normal or low", c.Priority)
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// open starts or resumes the checkpoint.
func (r *runner) open() error {
	sel, fp, err := fingerprint(r.cfg.Source.Describe(), r.f, r.cfg.Key)
	if err != nil {
		return err
	}
	now := r.cfg.Now().UTC()
	r.cp = Checkpoint{Version: CheckpointVersion, Fingerprint: fp, Selection: sel, Run: newRunID(), StartedAt: now, Until: now}
	if r.cfg.Checkpoint == "" {
		r.counts = r.cp.Counts.clone()
		return nil
	}
	old, ok, err := ReadCheckpoint(r.cfg.Checkpoint)
	if err != nil {
		return err
	}
	switch {
	case r.cfg.Resume && !ok:
		return fmt.Errorf("backfill: --resume: no checkpoint at %s", r.cfg.Checkpoint)
	case r.cfg.Resume && old.Fingerprint != fp:
		return fmt.Errorf("backfill: --resume: checkpoint %s is of another selection\n  checkpoint: %s\n  this run:   %s\n(resume with the same source, filters and model, or start a new checkpoint)",
			r.cfg.Checkpoint, old.Selection, sel)
	case r.cfg.Resume:
		r.cp = old
		for _, id := range old.Pending {
			r.pending[id] = true
		}
		for _, id := range old.Outstanding {
			r.own[id] = true
		}
		r.failed = old.FailedIDs
		r.log.Info("resuming backfill", "run", old.Run, "cursor", old.Cursor, "pending", len(old.Pending), "submitted_so_far", old.Counts.Submitted)
	case ok && !old.Done:
		return fmt.Errorf("backfill: checkpoint %s holds an unfinished backfill (run %s, %d submitted): pass --resume to continue it, or remove the file to start over",
			r.cfg.Checkpoint, old.Run, old.Counts.Submitted)
	}
	r.cp.Counts = r.cp.Counts.clone()
	r.counts = r.cp.Counts.clone()
	return nil
}

func newRunID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// claimer is the By of this backfill's claims.
func (r *runner) claimer() string { return ClaimedBy + " " + r.cp.Run }

// loop reads and submits batches until the source is exhausted, the limit
// is reached, an interrupt or an error.
func (r *runner) loop(ctx context.Context) error {
	for {
		select {
		case <-r.cfg.Interrupt:
			return ErrInterrupted
		default:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		items, err := r.cfg.Source.Next(ctx, r.f, r.cp.Cursor, r.cfg.Batch)
		if err != nil {
			return fmt.Errorf("read contents: %w", err)
		}
		if len(items) == 0 {
			return r.commit(r.cp.Cursor, true)
		}
		pos, limited, err := r.batch(ctx, items)
		if err != nil {
			return err
		}
		if err := r.commit(pos, !limited && len(items) < r.cfg.Batch); err != nil {
			return err
		}
		if limited {
			r.log.Info("limit reached", "selected", r.counts.Selected)
			return nil
		}
		if len(items) < r.cfg.Batch {
			return nil
		}
	}
}

type pick struct {
	it  Item
	key string
	job string
}

// batch classifies items and submits the selected ones. It returns the
// position after the last item it took and whether the limit stopped it.
func (r *runner) batch(ctx context.Context, items []Item) (Cursor, bool, error) {
	var picks []pick
	pos, limited := r.cp.Cursor, false
	for _, it := range items {
		if r.cfg.Limit > 0 && r.selected >= r.cfg.Limit {
			limited = true
			break
		}
		pos = it.Pos
		r.counts.Scanned++
		if it.Err != nil {
			r.fail(it.ID, it.Err)
			continue
		}
		key := r.cfg.Key(it.ID)
		if reason := r.f.Check(it, key); reason != "" {
			r.counts.Skipped[reason]++
			continue
		}
		r.counts.Selected++
		r.selected++
		if r.cfg.OnSelect != nil {
			r.cfg.OnSelect(it)
		}
		picks = append(picks, pick{it: it, key: key, job: JobID(it.ID, key)})
	}
	if r.cfg.DryRun {
		for _, p := range picks {
			if err := r.estimateOne(ctx, p); err != nil {
				return pos, limited, err
			}
		}
		r.report()
		return pos, limited, nil
	}
	// Write ahead: the jobs about to be claimed, so that a run that dies
	// between a claim and its publish is finished by --resume.
	wal := r.cp
	wal.Pending = nil
	for _, p := range picks {
		wal.Pending = append(wal.Pending, p.job)
	}
	if err := r.save(wal); err != nil {
		return pos, limited, err
	}
	r.inHand, r.published = wal.Pending, r.published[:0]
	for _, p := range picks {
		if err := r.submit(ctx, p); err != nil {
			return pos, limited, err
		}
		r.report()
	}
	r.report()
	return pos, limited, nil
}

// estimateOne adds a selected content to the dry run's estimate, unless
// its job was claimed already.
func (r *runner) estimateOne(ctx context.Context, p pick) error {
	if r.cfg.Scratch != nil {
		claimed, err := r.cfg.Scratch.Exists(ctx, scratch.SubmittedKey(p.job))
		if err != nil {
			return fmt.Errorf("claim of %s: %w", p.job, err)
		}
		if claimed {
			r.counts.Skipped[ReasonSubmitted]++
			return nil
		}
	}
	r.estimate.add(r.cfg.Estimator, p.it)
	return nil
}

// submit claims and publishes one job.
func (r *runner) submit(ctx context.Context, p pick) error {
	e, err := job.NewEvent(job.Spec{
		ID: p.job, ContentID: p.it.ID, TenantID: p.it.TenantID, OwnerID: p.it.OwnerID, Name: p.it.Name,
		Hints: map[string]string{"priority": string(r.cfg.Priority)}, Source: EventSource,
	})
	if err != nil {
		return err
	}
	raw, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode job %s: %w", p.job, err)
	}
	err = scratch.CreateJSON(ctx, r.cfg.Scratch, scratch.SubmittedKey(p.job),
		scratch.Submitted{SubmittedAt: r.cfg.Now().UTC(), By: r.claimer(), Job: raw})
	republish := false
	if errors.Is(err, scratch.ErrExists) {
		var prev scratch.Submitted
		if err := scratch.GetJSON(ctx, r.cfg.Scratch, scratch.SubmittedKey(p.job), &prev); err != nil {
			return fmt.Errorf("claim of %s: %w", p.job, err)
		}
		if !r.pending[p.job] || prev.By != r.claimer() {
			r.counts.Skipped[ReasonSubmitted]++
			return nil
		}
		// Ours, from the batch a stopped run had in hand: publish the
		// claimed event again (the same event id: the stream drops it if it
		// arrived; the pipeline treats a repeat as a redelivery).
		var again event.Event
		if err := json.Unmarshal(prev.Job, &again); err != nil {
			return fmt.Errorf("claim of %s: %w", p.job, err)
		}
		e, republish = again, true
		delete(r.pending, p.job)
	} else if err != nil {
		return fmt.Errorf("claim %s: %w", p.job, err)
	}
	if err := r.pace(ctx); err != nil {
		return err
	}
	if _, err := r.cfg.Publisher.Publish(ctx, e); err != nil {
		return fmt.Errorf("job %s (content %s): %w", p.job, p.it.ID, err)
	}
	r.published = append(r.published, p.job)
	r.counts.Submitted++
	if republish {
		r.counts.Republished++
	}
	if r.cfg.MaxPending > 0 {
		r.own[p.job] = true
	}
	return nil
}

// pace waits for the token bucket and for the backlog to drop under
// MaxPending.
func (r *runner) pace(ctx context.Context) error {
	if r.cfg.MaxPending > 0 {
		for {
			n, err := r.backlog(ctx)
			if err != nil {
				return err
			}
			if n < r.cfg.MaxPending {
				if r.waiting {
					r.log.Info("backlog below --max-pending: publishing again", "backlog", n, "max_pending", r.cfg.MaxPending)
				}
				r.waiting = false
				break
			}
			if !r.waiting {
				r.log.Info("backlog at --max-pending: paused", "backlog", n, "max_pending", r.cfg.MaxPending)
			}
			r.waiting = true
			r.report()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(r.cfg.Poll):
			}
			r.gaugeAt = time.Time{} // look again
		}
	}
	if r.limiter != nil {
		if err := r.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("rate: %w", err)
		}
	}
	return nil
}

// gaugeEvery bounds how often the transport's backlog is read while
// publishing.
const gaugeEvery = 250 * time.Millisecond

// backlog is the larger of the transport's backlog and the backfill's own
// jobs without an outcome (looked up only when they alone would pause).
func (r *runner) backlog(ctx context.Context) (int, error) {
	if len(r.own) >= r.cfg.MaxPending {
		for id := range r.own {
			_, done, err := scratch.GetOutcome(ctx, r.cfg.Scratch, id)
			if err != nil {
				return 0, fmt.Errorf("outcome of %s: %w", id, err)
			}
			if done {
				delete(r.own, id)
			}
		}
	}
	n := len(r.own)
	if r.cfg.Gauge != nil {
		if time.Since(r.gaugeAt) >= gaugeEvery {
			g, err := r.cfg.Gauge.Backlog(ctx)
			if err != nil {
				return 0, fmt.Errorf("backlog: %w", err)
			}
			r.gauge, r.gaugeAt = g, time.Now()
		}
		n = max(n, r.gauge)
	}
	r.lastBacklog = n
	return n, nil
}

// fail counts a content that could not be resolved.
func (r *runner) fail(id string, err error) {
	r.counts.Failed++
	if len(r.failed) < maxFailedIDs {
		r.failed = append(r.failed, id)
	}
	r.log.Warn("content failed", "content", id, "error", err)
}

// commit records that everything up to pos is done.
func (r *runner) commit(pos Cursor, done bool) error {
	r.cp.Cursor, r.cp.Pending, r.cp.Done = pos, nil, done
	r.cp.Counts = r.counts.clone()
	r.cp.FailedIDs = r.failed
	r.cp.Outstanding = nil
	if r.cfg.MaxPending > 0 {
		r.cp.Outstanding = slices.Sorted(maps.Keys(r.own))
	}
	r.inHand, r.published = nil, r.published[:0]
	if r.cfg.DryRun {
		return nil
	}
	return r.save(r.cp)
}

// save writes cp to the checkpoint file, if there is one.
func (r *runner) save(cp Checkpoint) error {
	if r.cfg.Checkpoint == "" {
		return nil
	}
	cp.UpdatedAt = r.cfg.Now().UTC()
	return writeCheckpoint(r.cfg.Checkpoint, cp)
}

// unpublished are the jobs of the batch in hand not confirmed published.
func (r *runner) unpublished() []string {
	var out []string
	for _, id := range r.inHand {
		if !slices.Contains(r.published, id) {
			out = append(out, id)
		}
	}
	return out
}

func (r *runner) report() {
	if r.cfg.Progress == nil {
		return
	}
	r.cfg.Progress(Progress{Counts: r.counts.clone(), Total: r.total, Elapsed: r.cfg.Now().Sub(r.start), Waiting: r.waiting, Backlog: r.lastBacklog})
}

func (r *runner) summary(s Summary, done bool) Summary {
	s.Counts = r.counts.clone()
	s.FailedIDs = r.failed
	s.Done = done && r.cp.Done
	s.Elapsed = r.cfg.Now().Sub(r.start).Seconds()
	if r.cfg.DryRun {
		est := r.estimate
		if est.ByMIME == nil {
			est.ByMIME, est.ByTenant = map[string]Bucket{}, map[string]Bucket{}
			est.PagesPerSecond = r.cfg.Estimator.withDefaults().PagesPerSecond
		}
		s.Estimate = &est
	}
	return s
}
