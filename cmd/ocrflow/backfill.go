package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/backfill"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// listFlag collects a repeatable flag; each use may hold a comma list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// timeFlag is an RFC 3339 time or a date (midnight UTC).
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(v string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			f.t = t
			return nil
		}
	}
	return fmt.Errorf("%q is not a date (2006-01-02) or an RFC 3339 time (2006-01-02T15:04:05Z)", v)
}

const backfillUsage = `Usage: ocrflow backfill (--database-url URL | --ids-from FILE|-) [flags]

Submits an OCR job (priority low) for every existing content the filters
select: originals only, status uploaded, the MIME types ocrflow reads,
without a finished result from the current model. Re-running never submits
a content twice. --dry-run estimates the work instead. See docs/backfill.md.

Exit status: 0 done (or --limit reached), 1 error or failed contents,
130 interrupted (resume with --resume).

Flags:
`

// backfillCmd runs `ocrflow backfill`.
func backfillCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (retErr error) {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tenants, owners, mimes, statuses listFlag
	var after, before timeFlag
	dbURL := fs.String("database-url", "", "simple-content's PostgreSQL database (default DATABASE_URL)")
	idsFrom := fs.String("ids-from", "", "a file of content ids, one a line (- for standard input), resolved through the v5 API at SIMPLE_CONTENT_URL")
	fs.Var(&tenants, "tenant", "only this tenant's contents (repeatable, or a comma list)")
	fs.Var(&owners, "owner", "only this owner's contents (repeatable, or a comma list)")
	fs.Var(&mimes, "mime", "MIME types or globs such as image/* (repeatable, or a comma list; * for all); default "+strings.Join(backfill.DefaultMIME, ","))
	fs.Var(&after, "created-after", "only contents created at or after this time (2006-01-02 or RFC 3339)")
	fs.Var(&before, "created-before", "only contents created before this time (default: when the backfill started)")
	fs.Var(&statuses, "status", "content statuses (repeatable, or a comma list); default uploaded")
	missing := fs.Bool("missing-ocr", true, "skip contents that have a finished result for the current model, mode and pipeline version")
	stale := fs.Bool("stale", false, "only contents whose results all come from another model, mode or pipeline version (re-OCR after an upgrade)")
	priority := fs.String("priority", string(job.PriorityLow), "job priority hint: low, normal or high")
	natsURL := fs.String("nats", "", "publish to the standalone runtime at this NATS URL (default NATS_URL, else nats://NATS_LISTEN)")
	broker := fs.String("broker", "", "publish to this Knative broker ingress URL instead (default BROKER_URL)")
	rateFlag := fs.Float64("rate", 20, "most jobs published per second (0: no limit)")
	maxPending := fs.Int("max-pending", 1000, "pause while the pipeline's backlog is at or above this (0: no limit); see docs/backfill.md")
	poll := fs.Duration("poll", 2*time.Second, "how often a paused backfill looks at the backlog")
	batch := fs.Int("batch", 100, "contents read, claimed and checkpointed together")
	limit := fs.Int64("limit", 0, "stop after this many selected contents (0: all); --resume continues after them")
	dry := fs.Bool("dry-run", false, "count and estimate (pages, GPU hours) instead of submitting; claims and sends nothing")
	list := fs.Bool("list", false, "print the id of every selected content on standard output (with --dry-run: what would be submitted)")
	pps := fs.Float64("pages-per-second", backfill.DefaultPagesPerSecond, "one GPU's throughput for the dry run's GPU hours")
	pdfBytes := fs.Int64("pdf-page-bytes", backfill.DefaultPDFPageBytes, "bytes per page of a scanned PDF, for the dry run's page estimate")
	officeBytes := fs.Int64("office-page-bytes", backfill.DefaultOfficePageBytes, "bytes per page of an office document, for the dry run's page estimate")
	checkpoint := fs.String("checkpoint", "", "checkpoint file, written after each batch (without one an interrupted backfill cannot be resumed)")
	resume := fs.Bool("resume", false, "continue the backfill of --checkpoint where it stopped")
	jsonOut := fs.Bool("json", false, "print the summary as JSON")
	every := fs.Duration("progress-interval", 10*time.Second, "how often progress is logged when standard error is not a terminal (0: never)")
	fs.Usage = func() {
		fmt.Fprint(stderr, backfillUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if *dbURL == "" && *idsFrom == "" {
		*dbURL = cfg.DatabaseURL
	}
	switch {
	case (*dbURL == "") == (*idsFrom == ""):
		fs.Usage()
		return errors.New("give one source: --database-url (or DATABASE_URL) or --ids-from")
	case *natsURL != "" && *broker != "":
		return errors.New("give --nats or --broker, not both")
	case *dry && (*checkpoint != "" || *resume):
		return errors.New("--dry-run writes no checkpoint: drop --checkpoint and --resume")
	case *resume && *checkpoint == "":
		return errors.New("--resume needs --checkpoint")
	}
	log := newLogger(stderr, cfg.LogLevel)
	recipe := app.RecipeFor(cfg, "")

	bc := backfill.Config{
		Filter: backfill.Filter{
			Tenants: tenants, Owners: owners, MIME: mimes, Statuses: statuses,
			CreatedAfter: after.t, CreatedBefore: before.t, MissingOCR: *missing, Stale: *stale,
		},
		Key:      func(id string) string { return recipe.Key(id, "") },
		Priority: job.Priority(strings.ToLower(*priority)), Rate: *rateFlag, MaxPending: *maxPending, Poll: *poll,
		Batch: *batch, Limit: *limit, DryRun: *dry, Checkpoint: *checkpoint, Resume: *resume, Log: log,
		Estimator: backfill.Estimator{PagesPerSecond: *pps, PDFPageBytes: *pdfBytes, OfficePageBytes: *officeBytes},
	}
	if *list {
		bc.OnSelect = func(it backfill.Item) { fmt.Fprintln(stdout, it.ID) }
	}

	// The source.
	if *dbURL != "" {
		src, closeDB, err := backfill.OpenPostgres(ctx, *dbURL, cfg.DatabaseSchema)
		if err != nil {
			return err
		}
		defer closeDB()
		bc.Source = src
	} else {
		api, err := simplecontent.New(simplecontent.Config{
			BaseURL: cfg.SimpleContentURL, APIKey: cfg.SimpleContentAPIKey,
			Timeout: cfg.SimpleContentTimeout, Attempts: cfg.SimpleContentAttempts,
		})
		if err != nil {
			return fmt.Errorf("--ids-from resolves ids through simple-content's v5 API: %w", err)
		}
		defer api.CloseIdleConnections()
		src, err := backfill.NewIDs(api, *idsFrom)
		if err != nil {
			return err
		}
		defer func() { _ = src.Close() }() // read only
		bc.Source = src
	}

	// The scratch store holds the claims (a dry run only reads them).
	scr, err := app.OpenScratch(ctx, cfg)
	if err != nil {
		return err
	}
	if c, ok := scr.(interface{ Close() error }); ok {
		defer func() { _ = c.Close() }()
	}
	bc.Scratch = scr

	// The transport.
	if !*dry {
		if *broker == "" && *natsURL == "" {
			*broker = cfg.BrokerURL
		}
		if *broker != "" {
			b, err := backfill.NewBroker(*broker)
			if err != nil {
				return err
			}
			bc.Publisher = b
			log.Info("publishing to the broker; the backlog is this backfill's jobs without an outcome", "broker", *broker)
		} else {
			rt, url, err := connectRuntime(ctx, cfg, *natsURL, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			defer func() { retErr = errors.Join(retErr, closeRuntime(rt, cfg)) }()
			triggers, err := eventing.Triggers()
			if err != nil {
				return err
			}
			n, err := backfill.NewNATS(rt.Conn(), standalone.DefaultStream, cfg.JobSubject, triggers)
			if err != nil {
				return err
			}
			bc.Publisher, bc.Gauge = n, n
			log.Info("publishing to the standalone runtime", "nats", url, "backlog_consumers", n.Consumers())
		}
		if *checkpoint == "" {
			log.Warn("no --checkpoint: an interrupted backfill cannot be resumed (re-running it skips what it submitted)")
		}
	}

	// Interrupts: the first finishes the batch in hand, a second stops at
	// once (the checkpoint still lets --resume finish that batch).
	interrupt := make(chan struct{})
	hard, stopHard := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHard()
	finished := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		log.Warn("interrupted: finishing the batch in hand and writing the checkpoint (interrupt again to stop at once)")
		close(interrupt)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		select {
		case <-finished:
		case <-sig:
			log.Warn("interrupted again: stopping now")
			stopHard()
		}
	})
	bc.Interrupt = interrupt

	rep := newReporter(stderr, *every, log)
	bc.Progress = rep.update
	sum, runErr := backfill.Run(hard, bc)
	close(finished)
	watch.Wait()
	rep.finish()

	if sum.Run != "" || runErr == nil || errors.Is(runErr, backfill.ErrInterrupted) {
		if *jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(sum); err != nil {
				return err
			}
		} else {
			w := stdout
			if *list { // the ids own standard output
				w = stderr
			}
			printSummary(w, sum)
		}
	}
	switch {
	case errors.Is(runErr, backfill.ErrInterrupted), errors.Is(runErr, context.Canceled) && ctx.Err() != nil:
		if *checkpoint != "" {
			fmt.Fprintf(stderr, "ocrflow backfill: interrupted; continue with --resume --checkpoint %s\n", *checkpoint)
		}
		return exitError(130)
	case runErr != nil:
		if *checkpoint != "" {
			runErr = fmt.Errorf("%w\n(the checkpoint %s keeps the batch in hand: fix the cause and continue with --resume)", runErr, *checkpoint)
		}
		return runErr
	case sum.Failed > 0:
		fmt.Fprintf(stderr, "ocrflow backfill: %d content(s) failed (their ids are in the summary; fix the cause and pass them with --ids-from)\n", sum.Failed)
		return exitError(1)
	}
	return nil
}

// printSummary writes the human summary.
func printSummary(out io.Writer, s backfill.Summary) {
	state := "complete"
	switch {
	case s.Interrupted:
		state = "interrupted"
	case !s.Done:
		state = "stopped"
	}
	kind := "backfill"
	if s.DryRun {
		kind = "dry run"
	}
	fmt.Fprintf(out, "%s %s after %.1fs%s\n", kind, state, s.Elapsed, runNote(s))
	fmt.Fprintf(out, "  scanned   %d\n  selected  %d\n", s.Scanned, s.Selected)
	if !s.DryRun {
		fmt.Fprintf(out, "  submitted %d", s.Submitted)
		if s.Republished > 0 {
			fmt.Fprintf(out, " (%d republished after the interruption)", s.Republished)
		}
		fmt.Fprintln(out)
	}
	for _, r := range slices.Sorted(maps.Keys(s.Skipped)) {
		if s.Skipped[r] > 0 {
			fmt.Fprintf(out, "  skipped   %d %s\n", s.Skipped[r], r)
		}
	}
	fmt.Fprintf(out, "  failed    %d\n", s.Failed)
	for _, id := range s.FailedIDs {
		fmt.Fprintf(out, "    %s\n", id)
	}
	if len(s.Unpublished) > 0 {
		fmt.Fprintf(out, "  not confirmed published: %s\n", strings.Join(s.Unpublished, " "))
	}
	if e := s.Estimate; e != nil {
		fmt.Fprintf(out, "estimate: %d documents, %s, ~%d pages, %.2f GPU hours at %.2g pages/s per GPU\n",
			e.Documents, bytesText(e.Bytes), e.Pages, e.GPUHours, e.PagesPerSecond)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, part := range []struct {
			title string
			m     map[string]backfill.Bucket
		}{{"by MIME type", e.ByMIME}, {"by tenant", e.ByTenant}} {
			fmt.Fprintf(tw, "  %s:\n", part.title)
			for _, k := range slices.Sorted(maps.Keys(part.m)) {
				b := part.m[k]
				name := k
				if name == "" {
					name = "(unknown)"
				}
				fmt.Fprintf(tw, "    %s\t%d docs\t%s\t~%d pages\n", name, b.Documents, bytesText(b.Bytes), b.Pages)
			}
		}
		_ = tw.Flush() // out is a terminal or a pipe; nothing to recover
	}
}

func runNote(s backfill.Summary) string {
	if s.Run == "" || s.DryRun {
		return ""
	}
	note := " (run " + s.Run
	if s.Resumed {
		note += ", resumed"
	}
	return note + ")"
}

// bytesText renders n bytes in binary units.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// reporter shows progress: a live bar on a terminal, else a log line
// every interval.
type reporter struct {
	mu   sync.Mutex
	last backfill.Progress
	seen bool
	bar  *progressbar.ProgressBar
	log  *slog.Logger
	stop chan struct{}
	wg   sync.WaitGroup
}

func newReporter(stderr io.Writer, every time.Duration, log *slog.Logger) *reporter {
	r := &reporter{log: log, stop: make(chan struct{})}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("backfill"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("contents"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(), progressbar.OptionClearOnFinish(),
		)
		return r
	}
	if every > 0 {
		r.wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-r.stop:
					return
				case <-t.C:
					r.logLine()
				}
			}
		})
	}
	return r
}

// update takes a progress snapshot.
func (r *reporter) update(p backfill.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.seen = p, true
	if r.bar == nil {
		return
	}
	if p.Total >= 0 && r.bar.GetMax64() != p.Total {
		r.bar.ChangeMax64(p.Total)
	}
	desc := fmt.Sprintf("submitted %d, skipped %d, failed %d", p.Submitted, skipped(p.Counts), p.Failed)
	if p.Waiting {
		desc += fmt.Sprintf(" — paused, backlog %d", p.Backlog)
	}
	r.bar.Describe(desc)
	_ = r.bar.Set64(p.Scanned) // a terminal write; nothing to do if it fails
}

func skipped(c backfill.Counts) int64 {
	var n int64
	for _, v := range c.Skipped {
		n += v
	}
	return n
}

// logLine logs the latest snapshot.
func (r *reporter) logLine() {
	r.mu.Lock()
	p, seen := r.last, r.seen
	r.mu.Unlock()
	if !seen {
		return
	}
	rate := 0.0
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.Submitted) / s
	}
	attrs := []any{"scanned", p.Scanned, "selected", p.Selected, "submitted", p.Submitted, "skipped", skipped(p.Counts),
		"failed", p.Failed, "jobs_per_second", fmt.Sprintf("%.1f", rate)}
	if p.Total >= 0 {
		attrs = append(attrs, "total", p.Total)
		if left := p.Total - p.Scanned; left > 0 && p.Scanned > 0 {
			eta := time.Duration(float64(p.Elapsed) / float64(p.Scanned) * float64(left)).Round(time.Second)
			attrs = append(attrs, "eta", eta.String())
		}
	}
	if p.Waiting {
		attrs = append(attrs, "paused_backlog", p.Backlog)
	}
	r.log.Info("backfill progress", attrs...)
}

// finish stops the reporter.
func (r *reporter) finish() {
	close(r.stop)
	r.wg.Wait()
	if r.bar != nil {
		_ = r.bar.Finish() // a terminal write
	}
}
