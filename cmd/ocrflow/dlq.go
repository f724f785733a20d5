package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/dlq"
	"github.com/ocrflow/ocrflow/shared/knative"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

const dlqUsage = `Usage:
  ocrflow dlq list [--json]
  ocrflow dlq show ID [--json]
  ocrflow dlq replay (ID... | --all) [--dry-run] [--json] [--nats URL | --broker URL]

The dead letters are the events whose retries ran out, kept by the
deadletter stage under deadletters/ in the scratch store (BLOB_URL).

list shows each with its job, the stage that failed, the event type, the
last status code and reason, its age and the attempt it was replayed as.
show prints one in full, with the dead event.
replay starts one new attempt per job of the named (or, with --all,
every not yet replayed) dead letters: the job again as <job>.r<k> with
hint replay_of=<job>, published to the standalone runtime (--nats, default
NATS_URL) or a Knative broker ingress (--broker). Pages the job finished
are taken over, not recognized again; the attempt's result supersedes the
job's. The dead letters are marked replayed, so a second replay publishes
nothing. --dry-run says what would be published and changes nothing.
Exit status 1 when a dead letter could not be replayed.
`

func dlqCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return exitError(2)
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stderr, dlqUsage)
		return nil
	case "list":
		return dlqList(ctx, args[1:], stdout, stderr)
	case "show":
		return dlqShow(ctx, args[1:], stdout, stderr)
	case "replay":
		return dlqReplay(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ocrflow dlq: unknown command %q\n\n%s", args[0], dlqUsage)
		return exitError(2)
	}
}

// dlqFlags returns the flag set of a dlq subcommand.
func dlqFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("dlq "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, dlqUsage+"\nFlags of "+name+":\n")
		fs.PrintDefaults()
	}
	return fs
}

// openDeadLetters opens the scratch store of BLOB_URL.
func openDeadLetters(ctx context.Context) (scratch.Store, config.Config, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, cfg, err
	}
	s, err := app.OpenScratch(ctx, cfg)
	return s, cfg, err
}

func dlqList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := dlqFlags("list", stderr)
	asJSON := fs.Bool("json", false, "print the dead letters as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return exitError(2)
	}
	s, _, err := openDeadLetters(ctx)
	if err != nil {
		return err
	}
	list, err := dlq.List(ctx, s, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []dlq.Entry{}
		}
		return writeJSON(stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tJOB\tSTAGE\tTYPE\tCODE\tREASON\tAGE\tREPLAYED AS")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, dash(e.Job), dash(e.Stage), e.Type, e.Code,
			cut(e.Reason, 60), age(time.Duration(e.AgeSeconds*float64(time.Second))), dash(e.ReplayedAs))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cut shortens s to one line of at most n runes.
func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dlqShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := dlqFlags("show", stderr)
	asJSON := fs.Bool("json", false, "print the dead letter as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitError(2)
	}
	s, _, err := openDeadLetters(ctx)
	if err != nil {
		return err
	}
	l, err := dlq.Get(ctx, s, pos[0], time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, l)
	}
	row := func(label, format string, args ...any) {
		fmt.Fprintf(stdout, "%-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	row("id", "%s", l.ID)
	row("job", "%s", dash(l.Job))
	row("stage", "%s", dash(l.Stage))
	row("type", "%s", l.Type)
	row("code", "%d", l.Code)
	row("dest", "%s", dash(l.Dest))
	row("received", "%s (%s ago)", l.ReceivedAt.UTC().Format(time.RFC3339), age(time.Duration(l.AgeSeconds*float64(time.Second))))
	if l.ReplayedAt != nil {
		row("replayed", "as %s at %s", l.ReplayedAs, l.ReplayedAt.UTC().Format(time.RFC3339))
	}
	row("reason", "%s", l.Reason)
	fmt.Fprintln(stdout, "event:")
	b, err := json.MarshalIndent(l.Event, "", "  ")
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return nil
}

func dlqReplay(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := dlqFlags("replay", stderr)
	all := fs.Bool("all", false, "replay every dead letter not replayed yet")
	dryRun := fs.Bool("dry-run", false, "say what would be published; change nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	natsURL := fs.String("nats", "", "NATS URL of the standalone runtime (default NATS_URL, else nats://NATS_LISTEN)")
	broker := fs.String("broker", "", "Knative broker ingress URL (instead of NATS)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(pos) > 0) {
		fmt.Fprintln(stderr, "ocrflow dlq replay: name dead letters or give --all (not both)")
		fs.Usage()
		return exitError(2)
	}
	s, cfg, err := openDeadLetters(ctx)
	if err != nil {
		return err
	}
	var send dlq.Sender = noSender{}
	to := "nothing (dry run)"
	if !*dryRun {
		sender, where, closeSender, err := replaySender(ctx, cfg, *natsURL, *broker, stderr)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, closeSender()) }()
		send, to = sender, where
	}
	rep, rerr := dlq.Replay(ctx, s, send, dlq.Request{IDs: pos, All: *all, DryRun: *dryRun})
	if rerr != nil && len(rep.Attempts) == 0 {
		return rerr // nothing was tried: say why
	}
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep, to)
	}
	if rerr != nil {
		fmt.Fprintf(stderr, "ocrflow dlq replay: %v\n", rerr)
		return exitError(1)
	}
	if !rep.OK() {
		return exitError(1) // the report says what could not be replayed
	}
	return nil
}

// noSender refuses to publish (a dry run publishes nothing).
type noSender struct{}

func (noSender) Send(context.Context, event.Event) error {
	return errors.New("dry run: nothing is published")
}

// replaySender returns where replay publishes: a broker ingress, or the
// standalone runtime at natsURL (default NATS_URL, else NATS_LISTEN).
func replaySender(ctx context.Context, cfg config.Config, natsURL, broker string, stderr io.Writer) (dlq.Sender, string, func() error, error) {
	if broker != "" {
		s, err := knative.NewSink(broker)
		if err != nil {
			return nil, "", nil, err
		}
		return brokerSender{s}, broker, s.Close, nil
	}
	rt, url, err := connectRuntime(ctx, cfg, natsURL, newLogger(stderr, "error"))
	if err != nil {
		return nil, "", nil, err
	}
	return rt, url, func() error { return closeRuntime(rt, cfg) }, nil
}

// brokerSender posts to a broker ingress, retrying with exponential
// backoff (the broker may be scaling or briefly unavailable).
type brokerSender struct{ sink *knative.Sink }

// Send posts e, with up to 5 retries from 500 ms.
func (b brokerSender) Send(ctx context.Context, e event.Event) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return b.sink.Send(cloudevents.ContextWithRetriesExponentialBackoff(ctx, 500*time.Millisecond, 5), e)
}

// printReport prints what a replay did (or would do).
func printReport(w io.Writer, rep dlq.Report, to string) {
	verb := "replayed"
	if rep.DryRun {
		verb = "would replay"
	}
	for _, a := range rep.Attempts {
		if a.Error != "" {
			fmt.Fprintf(w, "FAILED to replay %s as %s: %s\n", a.Job, a.As, a.Error)
			continue
		}
		fmt.Fprintf(w, "%s %s as %s (job event from %s; dead letters %s)\n", verb, a.Job, a.As, a.From, strings.Join(a.DeadLetters, ", "))
	}
	for _, u := range rep.Unreplayable {
		fmt.Fprintf(w, "cannot replay %s (job %s): %s\n", u.DeadLetter, dash(u.Job), u.Reason)
	}
	for _, u := range rep.AlreadyReplayed {
		fmt.Fprintf(w, "skipped %s: %s\n", u.DeadLetter, u.Reason)
	}
	n := 0
	for _, a := range rep.Attempts {
		if a.Error == "" {
			n++
		}
	}
	if rep.DryRun {
		fmt.Fprintf(w, "dry run: %d attempt(s) would be published; nothing changed\n", n)
		return
	}
	fmt.Fprintf(w, "%d attempt(s) published to %s\n", n, to)
}
