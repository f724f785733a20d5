// Command ocrflow runs the OCR pipeline without Kubernetes.
//
//	ocrflow run [flags] FILE|DIR...   OCR files on embedded defaults
//	ocrflow serve                     serve stages on NATS JetStream
//	ocrflow submit [flags]            publish one job
//	ocrflow nats                      a NATS server with JetStream
//	ocrflow function                  the Knative function server
//	ocrflow api [--addr HOST:PORT]    the HTTP API
//	ocrflow status JOB_ID             where a job is
//	ocrflow dlq list|show|replay      the dead letters, and replaying them
//	ocrflow backfill [flags]          OCR content that already exists
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/render"
)

const usage = `ocrflow turns documents into markdown: convert → recognize → finalize,
on NATS JetStream (embedded by default) with the routing of eventing/*.yaml.

Usage:
  ocrflow run [--out DIR] [--engine NAME] FILE|DIR...
      OCR files in-process on an embedded NATS server and write DIR/<name>.md.
      Exits non-zero if any job failed.
  ocrflow serve
      Serve the stages of OCR_STAGES on NATS_URL (empty: an embedded server
      listening on NATS_LISTEN). Stops gracefully on SIGINT/SIGTERM.
  ocrflow nats
      Run a NATS server with JetStream on its own (NATS_LISTEN, store in
      NATS_STORE_DIR), for several serve processes to share.
  ocrflow function
      Serve the Knative function (func-go CloudEvents server) for the stages
      of OCR_STAGES on LISTEN_ADDRESS; the container image's default command.
  ocrflow submit (--file PATH | --content-id ID) [flags]
      Publish one simpleprocess.job to the standalone runtime (--nats) or a
      Knative broker ingress (--broker); --wait follows it to its end.
  ocrflow api [--addr HOST:PORT] [--nats URL | --broker URL]
      Serve the HTTP API (docs/api.md) on API_ADDR (default :8080): submit
      jobs, read their status, follow them (SSE), OCR a document
      synchronously; /healthz, /readyz, /openapi.json.
  ocrflow status JOB_ID [--json] [--watch]
      Where a job is, read from the scratch store (BLOB_URL): state, pages
      done / total, failed pages, times, ETA, result. Exit status 0
      completed or running, 1 failed, 3 unknown job.
  ocrflow dlq list | show ID | replay (ID... | --all) [--dry-run]
      The dead letters: list them, show one, or replay their jobs as new
      attempts (--nats or --broker, like submit).
  ocrflow backfill (--database-url URL | --ids-from FILE|-) [filters] [flags]
      OCR content that already exists: submit a low-priority job for every
      original the filters select that has no result from the current model,
      paced by --rate and --max-pending, resumable (--checkpoint, --resume);
      --dry-run estimates pages and GPU hours instead (docs/backfill.md).

Run "ocrflow COMMAND --help" for a command's flags. Configuration comes
from the environment (a .env file in the working directory is read first;
the environment wins); see docs/configuration.md.
`

func main() {
	if os.Getenv(render.ChildEnv) == "1" {
		// A render child (RENDER_ISOLATION=process): serve MuPDF calls only.
		if err := render.ServeChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "run":
		err = runCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		err = serveCmd(ctx, args[1:], stderr)
	case "submit":
		err = submitCmd(ctx, args[1:], stdout, stderr)
	case "function":
		err = functionCmd(ctx, args[1:], stderr)
	case "nats":
		err = natsCmd(ctx, args[1:], stderr)
	case "api":
		err = apiCmd(ctx, args[1:], stderr)
	case "status":
		err = statusCmd(ctx, args[1:], stdout, stderr)
	case "dlq":
		err = dlqCmd(ctx, args[1:], stdout, stderr)
	case "backfill":
		err = backfillCmd(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ocrflow: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &exit):
		return int(exit)
	default:
		fmt.Fprintf(stderr, "ocrflow %s: %v\n", args[0], err)
		return 1
	}
}

// exitError ends a command with a code after it has reported by itself.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func loadConfig() (config.Config, error) {
	return config.Load()
}
