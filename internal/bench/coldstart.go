package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/ocrflow/ocrflow/internal/funchost"
)

// Cold start (target 5 of issue 14): the Knative function binary as
// `func build --builder=host` makes it (internal/funchost), from process
// start to the first 200 READY of /health/readiness — what a scale-from-
// zero request waits for beyond the pod's own start.

// coldStartTarget is the most a cold start may take, in milliseconds.
const coldStartTarget = 50

// ColdStartResult is what ColdStart measured, one duration per start.
type ColdStartResult struct {
	// Ready runs from the fork to the first 200 READY.
	Ready []time.Duration
	// Init runs from the fork to the exit of the same binary refused by
	// its configuration (OCR_ENGINE unknown): the process image and every
	// linked package's initialisation, before ocrflow's own start-up.
	Init []time.Duration
	// Empty runs from the fork to the exit of an empty Go program: what
	// this machine charges for any process.
	Empty []time.Duration
}

// ColdStart builds the function under func's host scaffolding in dir and
// starts it n times, interleaving the three starts ColdStartResult names.
func ColdStart(ctx context.Context, root, dir string, n int) (ColdStartResult, error) {
	var res ColdStartResult
	build := filepath.Join(dir, "funchost")
	if _, err := funchost.Scaffold(build, root); err != nil {
		return res, err
	}
	bin, err := funchost.Build(ctx, build)
	if err != nil {
		return res, err
	}
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		return res, fmt.Errorf("cold start: %w", err)
	}
	if err := os.WriteFile(filepath.Join(empty, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		return res, fmt.Errorf("cold start: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", "empty.bin", "main.go")
	cmd.Dir, cmd.Env = empty, append(os.Environ(), "GOWORK=off", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return res, fmt.Errorf("cold start: build an empty program: %w: %s", err, out)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir,
		"OCR_ENGINE=fake", "BLOB_URL=file://" + filepath.Join(dir, "blobs"),
		"CONTENT_DIR=" + filepath.Join(root, "testdata"), "OUTPUT_DIR=" + filepath.Join(dir, "out"),
		"K_SINK=http://127.0.0.1:9", "LOG_LEVEL=warn", "METRICS_ADDR=127.0.0.1:0",
	}
	for range n {
		d, err := startOnce(ctx, bin, root, env)
		if err != nil {
			return res, err
		}
		res.Ready = append(res.Ready, d)
		if d, err = runOnce(ctx, bin, root, append(env, "OCR_ENGINE=unknown")); err != nil {
			return res, err
		}
		res.Init = append(res.Init, d)
		if d, err = runOnce(ctx, filepath.Join(empty, "empty.bin"), root, env); err != nil {
			return res, err
		}
		res.Empty = append(res.Empty, d)
	}
	return res, nil
}

// runOnce runs bin to its exit (whatever its status) and returns the time
// from the fork to the exit.
func runOnce(ctx context.Context, bin, dir string, env []string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir, cmd.Env = dir, env
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		return 0, fmt.Errorf("cold start: %w", err)
	}
	return d, nil
}

// startOnce starts bin as func's host runner does (funchost.Start polls
// readiness every millisecond), returns the time from just before the
// fork to the first 200 READY, and stops the process.
func startOnce(ctx context.Context, bin, dir string, env []string) (time.Duration, error) {
	start := time.Now()
	p, err := funchost.Start(ctx, bin, dir, env)
	if err != nil {
		return 0, fmt.Errorf("cold start: %w", err)
	}
	d := time.Since(start)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = p.Stop(stopCtx) // the start is measured; how it ends is not
	return d, nil
}

func coldStartRows(ctx context.Context, env *Env) ([]Row, error) {
	n := 15
	if env.Quick {
		n = 3
	}
	res, err := ColdStart(ctx, env.Root, env.Dir, n)
	if err != nil {
		return nil, err
	}
	ready, init, empty := millis(res.Ready), millis(res.Init), millis(res.Empty)
	row := Row{Name: "cold_start", Value: Median(ready), Unit: "ms"}.Judge(ValueBelow(coldStartTarget, "ms"))
	row.Note = fmt.Sprintf("median of %d starts of the function binary (func's host build, fake engine, every stage), fork to the first 200 READY, readiness polled every millisecond; min %s, max %s ms",
		n, Number(slices.Min(ready)), Number(slices.Max(ready)))
	wiring := Row{Name: "cold_start_ocrflow_part", Value: Median(ready) - Median(init), Unit: "ms"}.Compare(Median(ready), "ms", "cold_start")
	wiring.Note = "ocrflow's own start-up: cold_start minus cold_start_init (configuration, ports, stages, metrics listener, func-go's server)"
	initRow := Row{Name: "cold_start_init", Value: Median(init), Unit: "ms"}.Compare(Median(ready), "ms", "cold_start")
	initRow.Note = "the same binary refused by its configuration: process image and the linked packages' init (GODEBUG=inittrace=1 names them: excelize's number-format tables, the AWS SDK, OpenTelemetry/gRPC, wazero)"
	emptyRow := Row{Name: "cold_start_empty_program", Value: Median(empty), Unit: "ms"}.Compare(Median(ready), "ms", "cold_start")
	emptyRow.Note = "an empty Go program, fork to exit: this machine's floor for any process"
	if !row.Pass {
		row.Note = fmt.Sprintf("not met: %s ms of it is the process and its libraries' init (cold_start_init), %s ms ocrflow's own start-up; ",
			Number(initRow.Value), Number(wiring.Value)) + row.Note
	}
	return []Row{row, initRow, wiring, emptyRow}, nil
}

func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Microseconds()) / 1000
	}
	return out
}
