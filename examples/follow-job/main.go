// Command follow-job prints the lifecycle events of one job —
// ocr.job.started, ocr.job.progress, then ocr.job.completed or
// ocr.job.failed — as `ocrflow serve` publishes them on the subjects
// ocr.job.* of the stream OCRFLOW, and exits when the job has ended:
//
//	go run ./examples/follow-job -job-id ID [-nats URL] [-timeout 10m]
//
// It reads the stream from its start (an ordered JetStream consumer), so it
// also reports a job that ended before it was started, for as long as the
// stream keeps events (72 h). Events are decoded with the CloudEvents SDK's
// NATS JetStream binding, which reads both structured (ocrflow) and binary
// (ce-* headers) messages. Exit status: 0 when the job completed, 1 when it
// failed or did not end in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ocrflow/ocrflow/shared/events"
)

// Where `ocrflow serve` keeps its events, and the lifecycle subjects.
const (
	stream    = "OCRFLOW"
	lifecycle = "ocr.job.>"
)

// errFailed reports a job that ended in ocr.job.failed.
var errFailed = errors.New("the job failed")

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "follow-job:", err)
		}
		os.Exit(1)
	}
}

// defaultURL is where `ocrflow submit` connects: NATS_URL, else the
// embedded server of `ocrflow serve` on NATS_LISTEN (127.0.0.1:4222).
func defaultURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	if l := os.Getenv("NATS_LISTEN"); l != "" {
		return "nats://" + l
	}
	return "nats://127.0.0.1:4222"
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("follow-job", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", defaultURL(), "NATS URL (default: NATS_URL, else nats://NATS_LISTEN)")
	jobID := fs.String("job-id", "", "the job to follow")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the job's end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *jobID == "" {
		fs.Usage()
		return errors.New("-job-id is required")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	nc, err := nats.Connect(*url, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{lifecycle}})
	if err != nil {
		return fmt.Errorf("follow %s in stream %s on %s: %w (is `ocrflow serve` running there?)", lifecycle, stream, *url, err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return err
	}
	defer msgs.Stop()

	for {
		m, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("job %s did not end within %s", *jobID, *timeout)
			}
			return err
		}
		e, err := binding.ToEvent(ctx, cejs.NewMessage(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}))
		if err != nil {
			fmt.Fprintf(stderr, "skipping a message on %s that is no CloudEvent: %v\n", m.Subject(), err)
			continue
		}
		if job, _ := e.Extensions()[events.ExtJob].(string); job != *jobID {
			continue
		}
		fmt.Fprintf(stdout, "%s %s\n", e.Type(), e.Data())
		switch e.Type() {
		case events.TypeJobCompleted:
			return nil
		case events.TypeJobFailed:
			return fmt.Errorf("job %s: %w", *jobID, errFailed)
		}
	}
}
