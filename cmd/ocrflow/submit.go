package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// hintFlags collects repeated --hint key=value flags.
type hintFlags map[string]string

func (h hintFlags) String() string { return fmt.Sprint(map[string]string(h)) }

func (h hintFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("hint %q is not key=value", v)
	}
	h[k] = val
	return nil
}

func submitCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "source file path (directory content store)")
	contentID := fs.String("content-id", "", "simple-content content id of the source")
	tenant := fs.String("tenant", "", "tenant id")
	owner := fs.String("owner", "", "owner id")
	jobID := fs.String("job-id", "", "job id (default: generated)")
	natsURL := fs.String("nats", "", "NATS URL of the standalone runtime (default NATS_URL, else nats://127.0.0.1:4222)")
	broker := fs.String("broker", "", "Knative broker ingress URL (instead of NATS)")
	wait := fs.Bool("wait", false, "follow the job's lifecycle; print the terminal event; exit 1 if it failed (NATS only)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long --wait waits")
	hints := hintFlags{}
	fs.Var(hints, "hint", "job hint key=value (repeatable): force, priority, timeout_seconds, resolution, pages, output_format")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ocrflow submit (--file PATH | --content-id ID) [flags]\n\nPublishes one simpleprocess.job CloudEvent (uow ocr).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*file == "") == (*contentID == "") {
		fs.Usage()
		return errors.New("give exactly one of --file and --content-id")
	}
	if *jobID == "" {
		*jobID = "job-" + randomSuffix() + randomSuffix()
	}
	spec := job.Spec{ID: *jobID, ContentID: *contentID, TenantID: *tenant, OwnerID: *owner, Hints: hints}
	if *file != "" {
		abs, err := filepath.Abs(*file)
		if err != nil {
			return err
		}
		spec.Location, spec.Name = abs, filepath.Base(abs)
	}
	e, err := job.NewEvent(spec)
	if err != nil {
		return err
	}
	if *broker != "" {
		if *wait {
			return errors.New("--wait needs the standalone runtime (--nats): lifecycle events are not readable from a broker ingress")
		}
		if cfg, err := loadConfig(); err != nil {
			fmt.Fprintf(stderr, "ocrflow submit: warning: job %s not kept in the scratch store: %v\n", *jobID, err)
		} else {
			keepSubmitted(ctx, cfg, e, stderr)
		}
		return submitBroker(ctx, *broker, e, stdout)
	}

	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	keepSubmitted(ctx, cfg, e, stderr)
	rt, url, err := connectRuntime(ctx, cfg, *natsURL, newLogger(stderr, "error"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeRuntime(rt, cfg)) }()
	var lifecycle <-chan event.Event
	followCtx, stop := context.WithTimeout(ctx, *timeout)
	defer stop()
	if *wait {
		if lifecycle, err = rt.Follow(followCtx, standalone.LifecycleSubjects); err != nil {
			return err
		}
	}
	if err := rt.Send(ctx, e); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "submitted job %s to %s\n", *jobID, url)
	if !*wait {
		return nil
	}
	for ev := range lifecycle {
		if id, _ := ev.Extensions()[events.ExtJob].(string); id != *jobID {
			continue
		}
		fmt.Fprintf(stdout, "%s %s\n", ev.Type(), ev.Data())
		if events.Terminal(ev.Type()) {
			if ev.Type() == events.TypeJobFailed {
				return exitError(1)
			}
			return nil
		}
	}
	return fmt.Errorf("job %s did not end within %s", *jobID, *timeout)
}

// submitBroker posts the job to a Knative broker ingress.
func submitBroker(ctx context.Context, url string, e event.Event, stdout io.Writer) error {
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		return err
	}
	res := c.Send(cloudevents.ContextWithTarget(ctx, url), e)
	if !cloudevents.IsACK(res) {
		return fmt.Errorf("post to broker %s: %w", url, res)
	}
	fmt.Fprintf(stdout, "submitted job %s to %s\n", e.ID(), url)
	return nil
}

// keepSubmitted writes the job's submitted record to the scratch store of
// BLOB_URL, so that `ocrflow status` and the API see the job queued before
// convert starts it and `ocrflow dlq replay` can run it again. It is best
// effort: a store that cannot be reached is a warning, and the job still
// goes (convert writes the record too when it starts the job).
func keepSubmitted(ctx context.Context, cfg config.Config, e event.Event, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := app.OpenScratch(ctx, cfg)
	if err == nil {
		err = scratch.Submit(ctx, s, e.ID(), "ocrflow submit", e)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ocrflow submit: warning: job %s not kept in the scratch store %s (ocrflow status sees it once convert starts it): %v\n",
			e.ID(), cfg.BlobURL, err)
	}
}
