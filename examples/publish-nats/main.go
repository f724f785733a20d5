// Command publish-nats publishes one OCR job to ocrflow's standalone
// runtime (`ocrflow serve`) over NATS JetStream, with the CloudEvents SDK's
// JetStream protocol:
//
//	go run ./examples/publish-nats (-file PATH | -content-id ID) [-nats URL] [-job-id ID]
//
// Jobs go to the subject ocr.jobs of the stream OCRFLOW, which `ocrflow
// serve` creates. The event is the simple-process job envelope built by
// job.NewEvent: -file names a document for the directory content store
// (it must lie under the server's CONTENT_DIR), -content-id a document in
// simple-content. The result arrives later as ocr.job.completed or
// ocr.job.failed (see examples/follow-job).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"

	"github.com/ocrflow/ocrflow/shared/job"
)

// Where `ocrflow serve` keeps its events.
const (
	stream     = "OCRFLOW"
	jobSubject = "ocr.jobs"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "publish-nats:", err)
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
	fs := flag.NewFlagSet("publish-nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", defaultURL(), "NATS URL (default: NATS_URL, else nats://NATS_LISTEN)")
	file := fs.String("file", "", "source file (directory content store)")
	contentID := fs.String("content-id", "", "simple-content id of the source")
	jobID := fs.String("job-id", "", "job id (default: generated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*file == "") == (*contentID == "") {
		fs.Usage()
		return errors.New("give exactly one of -file and -content-id")
	}
	if *jobID == "" {
		*jobID = "job-" + rand.Text()
	}
	spec := job.Spec{ID: *jobID, ContentID: *contentID, Source: "examples/publish-nats"}
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

	nc, err := nats.Connect(*url, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", *url, err)
	}
	defer nc.Close()
	// The SDK's sender creates a stream it does not find (with other
	// subjects); ask first, so a typo or a server without ocrflow fails
	// with a clear message instead.
	js, err := nc.JetStream()
	if err != nil {
		return err
	}
	if _, err := js.StreamInfo(stream); err != nil {
		return fmt.Errorf("stream %s on %s: %w (is `ocrflow serve` running there?)", stream, *url, err)
	}
	sender, err := cejs.NewSenderFromConn(nc, stream, jobSubject, nil)
	if err != nil {
		return err
	}
	c, err := cloudevents.NewClient(sender)
	if err != nil {
		return err
	}
	if res := c.Send(ctx, e); !cloudevents.IsACK(res) {
		return fmt.Errorf("publish job %s: %w", e.ID(), res)
	}
	fmt.Fprintf(stdout, "published job %s on %s (stream %s, %s)\n", e.ID(), jobSubject, stream, *url)
	return nil
}
