package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	fnce "knative.dev/func-go/cloudevents"

	"github.com/ocrflow/ocrflow"
)

func functionCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("function", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ocrflow function

Serves the Knative function (the root package's New(), as func builds it)
on LISTEN_ADDRESS (default [::]:8080): CloudEvents on /, health on
/health/readiness and /health/liveness. OCR_STAGES selects the stages;
K_SINK (the broker ingress) is required when convert is served. This is the
container image's default command.
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	// func-go's server, with its defaults (30 s write timeout), exactly as
	// `func build` would run it; stopping on ctx or SIGTERM.
	return fnce.New(ocrflow.New()).Start(ctx)
}
