// Command publish-http publishes one OCR job to a Knative broker ingress
// with the CloudEvents SDK over HTTP — what a platform does to ask ocrflow
// for the markdown of a document it stored in simple-content:
//
//	go run ./examples/publish-http -broker URL -content-id ID [-tenant T] [-owner O] [-job-id ID]
//
// The job is the simple-process job envelope (type simpleprocess.job,
// data.uow "ocr"), built with job.NewEvent, which also sets the uow and
// ocrjob extensions the Triggers filter on. The broker answers 202 once it
// has taken the event; the result arrives later as ocr.job.completed or
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

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ocrflow/ocrflow/shared/job"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "publish-http:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish-http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "", "broker ingress URL, e.g. http://broker-ingress.knative-eventing.svc.cluster.local/ocrflow/ocrflow")
	contentID := fs.String("content-id", "", "simple-content id of the source document")
	tenant := fs.String("tenant", "", "tenant the job acts for (must own the content)")
	owner := fs.String("owner", "", "owner the job acts for (must own the content)")
	jobID := fs.String("job-id", "", "job id (default: generated); a job id is used once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *broker == "" || *contentID == "" {
		fs.Usage()
		return errors.New("-broker and -content-id are required")
	}
	if *jobID == "" {
		*jobID = "job-" + rand.Text()
	}

	e, err := job.NewEvent(job.Spec{
		ID: *jobID, ContentID: *contentID, TenantID: *tenant, OwnerID: *owner,
		Source: "examples/publish-http",
	})
	if err != nil {
		return err
	}
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		return err
	}
	res := c.Send(cloudevents.ContextWithTarget(ctx, *broker), e)
	if !cloudevents.IsACK(res) {
		return fmt.Errorf("publish job %s to %s: %w", e.ID(), *broker, res)
	}
	status := 0
	var hr *cehttp.Result
	if cloudevents.ResultAs(res, &hr) {
		status = hr.StatusCode
	}
	fmt.Fprintf(stdout, "published job %s to %s (HTTP %d)\n", e.ID(), *broker, status)
	return nil
}
