// Command ocrflow-bench runs the performance targets of docs/performance.md
// (internal/bench) and prints one table — measured value, reference,
// ratio, target, pass/fail — and writes the same rows as JSON for
// comparison across commits. `make bench` runs it after the Go
// benchmarks.
//
//	go run ./cmd/ocrflow-bench [-run gpu,events] [-quick] [-json bench.json] [-strict]
//
// It is a program of its own, not an `ocrflow` subcommand: it builds and
// starts the ocrflow binaries it measures (cold start, memory), links the
// fake model server and the in-process fixtures, and none of that belongs
// in the product's binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ocrflow/ocrflow/internal/bench"
)

// errTargetsMissed ends a -strict run whose table has a missed target
// (exit status 2, the table already printed).
var errTargetsMissed = errors.New("targets not met")

func main() {
	err := run()
	switch {
	case errors.Is(err, errTargetsMissed):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "ocrflow-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	filter := flag.String("run", "", "run only the producers whose name or group contains one of these comma-separated terms")
	quick := flag.Bool("quick", false, "shorter runs (fewer repeats and pages): a smoke test of the harness, not figures")
	jsonOut := flag.String("json", "", "also write the rows as JSON to this file")
	list := flag.Bool("list", false, "list the producers and exit")
	strict := flag.Bool("strict", false, "exit with status 2 when a target is not met")
	flag.Parse()

	ps := bench.Select(bench.All(), *filter)
	if *list {
		for _, p := range ps {
			fmt.Printf("%-24s %s\n", p.Name, p.Group)
		}
		return nil
	}
	if len(ps) == 0 {
		return fmt.Errorf("no producer matches %q (see -list)", *filter)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ocrflow-bench-")
	if err != nil {
		return fmt.Errorf("scratch dir: %w", err)
	}
	defer os.RemoveAll(dir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &bench.Env{Root: root, Dir: dir, Quick: *quick, Log: os.Stderr}
	rows := bench.Run(ctx, env, ps)
	rep := bench.NewReport(ctx, root, *quick, rows)
	if err := bench.WriteTable(os.Stdout, rows); err != nil {
		return err
	}
	fmt.Printf("\n%d targets met, %d not met (commit %s)\n", rep.Passed, rep.Failed, short(rep.Commit, rep.Dirty))
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		if err := errors.Join(bench.WriteJSON(f, rep), f.Close()); err != nil {
			return err
		}
	}
	if *strict && rep.Failed > 0 {
		return errTargetsMissed
	}
	return nil
}

// repoRoot finds the directory holding go.mod from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the repository")
		}
		dir = parent
	}
}

func short(commit string, dirty bool) string {
	if commit == "" {
		return "unknown"
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if dirty {
		commit += "+dirty"
	}
	return commit
}
