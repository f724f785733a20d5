package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/status"
)

// Exit codes of `ocrflow status`.
const (
	exitStatusFailed  = 1 // the job failed (or its status could not be read)
	exitStatusUnknown = 3 // the scratch store knows no such job
)

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON (with --watch: one object per change)")
	watch := fs.Bool("watch", false, "follow the job until it ends, redrawing as it changes")
	interval := fs.Duration("interval", time.Second, "how often --watch reads the status")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ocrflow status JOB_ID [--json] [--watch]

Prints where a job is, read from the scratch store (BLOB_URL): its state
(queued, converting, recognizing, finalizing, completed, failed), pages
done / total, pages by route, failed pages with their reasons, times, the
rate and an ETA, the error of a failed job, the derived content of a
completed one, and replay links. Any process with the same BLOB_URL
answers for any job.

Exit status: 0 the job completed or is still running, 1 it failed (or the
status could not be read), 2 usage, 3 unknown job.

Flags:
`)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *interval <= 0 {
		fs.Usage()
		return exitError(2)
	}
	id := pos[0]
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	store, err := app.OpenScratch(ctx, cfg)
	if err != nil {
		return err
	}
	w := statusWriter{out: stdout, json: *asJSON, tty: isTerminal(stdout)}
	var last status.Job
	for first := true; ; first = false {
		st, err := status.Read(ctx, store, id, time.Now())
		if errors.Is(err, status.ErrUnknown) {
			fmt.Fprintf(stderr, "ocrflow status: unknown job %s (nothing under %s in %s)\n", id, scratch.JobPrefix(id), cfg.BlobURL)
			return exitError(exitStatusUnknown)
		}
		if err != nil {
			return err
		}
		if !*watch {
			return w.final(st)
		}
		if first || changed(last, st) {
			if err := w.update(st); err != nil {
				return err
			}
		}
		last = st
		if st.State.Terminal() {
			return w.exit(st)
		}
		select {
		case <-ctx.Done():
			return exitError(130)
		case <-time.After(*interval):
		}
	}
}

// parseArgs parses flags given before, between and after the positional
// arguments (`ocrflow status JOB --json`) and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// isTerminal reports whether w is a terminal (redraw in place there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// changed reports whether the job moved (times and the ETA always do).
func changed(a, b status.Job) bool {
	return a.State != b.State || a.Pages.Rendered != b.Pages.Rendered || a.Pages.Done != b.Pages.Done ||
		a.Pages.Failed != b.Pages.Failed || a.ReplayedAs != b.ReplayedAs
}

// statusWriter prints statuses: a screen, a line per change, or JSON.
type statusWriter struct {
	out  io.Writer
	json bool
	tty  bool
	// drawn is how many lines the last screen took (to redraw in place).
	drawn int
}

// final prints st once and ends the command with its exit status.
func (w *statusWriter) final(st status.Job) error {
	if w.json {
		if err := writeJSON(w.out, st); err != nil {
			return err
		}
	} else {
		fmt.Fprint(w.out, screen(st, time.Now()))
	}
	return w.exit(st)
}

// update prints a changed status while watching.
func (w *statusWriter) update(st status.Job) error {
	switch {
	case w.json:
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode status: %w", err)
		}
		fmt.Fprintf(w.out, "%s\n", b)
	case w.tty:
		s := screen(st, time.Now())
		if w.drawn > 0 {
			fmt.Fprintf(w.out, "\x1b[%dA\x1b[J", w.drawn) // up, then clear to the end
		}
		fmt.Fprint(w.out, s)
		w.drawn = strings.Count(s, "\n")
	default:
		fmt.Fprintln(w.out, line(st, time.Now()))
		if st.State.Terminal() {
			fmt.Fprint(w.out, "\n"+screen(st, time.Now()))
		}
	}
	return nil
}

// exit returns the exit status of st: failed 1, anything else 0.
func (w *statusWriter) exit(st status.Job) error {
	if st.State == status.Failed {
		return exitError(exitStatusFailed)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return nil
}

// line is one line of a watched job's progress.
func line(st status.Job, now time.Time) string {
	s := fmt.Sprintf("%s %s %s", now.UTC().Format(time.TimeOnly), st.JobID, st.State)
	if st.Pages.Total > 0 {
		s += fmt.Sprintf(" %d/%d pages", st.Pages.Done, st.Pages.Total)
	}
	if st.Pages.Failed > 0 {
		s += fmt.Sprintf(" (%d failed)", st.Pages.Failed)
	}
	return s
}

// barWidth is the progress bar's width in cells.
const barWidth = 30

// screen renders st for a person.
func screen(st status.Job, now time.Time) string {
	var b strings.Builder
	row := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	row("job", "%s", st.JobID)
	state := string(st.State)
	if st.Pages.Total > 0 {
		state += fmt.Sprintf("  %d/%d pages", st.Pages.Done, st.Pages.Total)
		if !st.State.Terminal() {
			state = fmt.Sprintf("%-12s %s %3d%%  %d/%d pages", st.State, bar(st.Pages.Done, st.Pages.Total),
				100*st.Pages.Done/st.Pages.Total, st.Pages.Done, st.Pages.Total)
			if st.State == status.Converting {
				state += fmt.Sprintf(", %d rendered", st.Pages.Rendered)
			}
		}
	}
	row("state", "%s", state)
	if st.SourceName != "" || st.ContentID != "" {
		src := st.SourceName
		if st.SourceFormat != "" {
			src += " (" + st.SourceFormat + ")"
		}
		if st.ContentID != "" {
			src = strings.TrimSpace(src + " content " + st.ContentID)
		}
		row("source", "%s", src)
	}
	if st.TenantID != "" {
		row("tenant", "%s", st.TenantID)
	}
	if st.Pages.Done > 0 {
		row("routes", "text %d · gpu %d · fallback %d · failed %d",
			st.Pages.ByRoute[status.RouteText], st.Pages.ByRoute[status.RouteGPU], st.Pages.ByRoute[status.RouteFallback], st.Pages.Failed)
	}
	for i, f := range st.FailedPages {
		label := ""
		if i == 0 {
			label = "failed"
		}
		row(label, "page %d: %s", f.Page, f.Reason)
	}
	for _, t := range []struct {
		label string
		at    *time.Time
	}{{"submitted", st.SubmittedAt}, {"started", st.StartedAt}, {"updated", st.UpdatedAt}, {"finished", st.FinishedAt}} {
		if t.at != nil {
			row(t.label, "%s (%s ago)", t.at.UTC().Format(time.RFC3339), age(now.Sub(*t.at)))
		}
	}
	if st.PagesPerSecond > 0 {
		rate := fmt.Sprintf("%.2f pages/s", st.PagesPerSecond)
		if st.ETASeconds != nil {
			rate += fmt.Sprintf(", about %s left", age(time.Duration(*st.ETASeconds*float64(time.Second))))
		}
		row("rate", "%s", rate)
	}
	if st.ErrorType != "" || st.ErrorMessage != "" {
		row("error", "%s: %s", st.ErrorType, st.ErrorMessage)
	}
	if st.DerivedContentID != "" {
		result := st.DerivedContentID
		if st.Reused {
			result += " (reused an earlier result)"
		}
		row("result", "%s", result)
	}
	if st.ReplayOf != "" {
		row("replay of", "%s", st.ReplayOf)
	}
	if st.ReplayedAs != "" {
		row("replayed", "as %s (ocrflow status %s)", st.ReplayedAs, st.ReplayedAs)
	}
	return b.String()
}

// bar draws done/total as a bar of barWidth cells.
func bar(done, total int) string {
	n := 0
	if total > 0 {
		n = min(barWidth, barWidth*done/total)
	}
	return "[" + strings.Repeat("█", n) + strings.Repeat("░", barWidth-n) + "]"
}

// age renders a duration the way a person reads it: 45s, 3m, 2h5m, 4d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
