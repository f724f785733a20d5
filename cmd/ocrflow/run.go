package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "out", "directory the results are written to")
	format := fs.String("format", "", "results to write per document: comma list of markdown, json, pdf (default OCR_OUTPUTS, else markdown)")
	eng := fs.String("engine", "", "recognition engine (default OCR_ENGINE, else tesseract)")
	contentStore := fs.String("content", config.ContentSimpleContent, "content store: simple-content (embedded in this process) or dir (read the files in place)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ocrflow run [--out DIR] [--format markdown,json,pdf] [--engine NAME] [--content simple-content|dir] FILE|DIR...

Runs the whole pipeline in this process on an embedded NATS server: one job
per file (directories are searched for supported documents), progress on
stdout, DIR/<file name>.md per document (and .json, .ocr.pdf as --format
asks: the JSON document with layout and boxes, the searchable PDF), then a
summary. Exits 1 if any job failed.

With --content simple-content (the default) the run starts simple-content's
real v5 API in-process, uploads each file to it as a platform would, submits
jobs by content id, and downloads each derived content into DIR. With
--content dir the pipeline reads the files in place and writes DIR itself.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError(2)
	}
	if *contentStore != config.ContentSimpleContent && *contentStore != config.ContentDir {
		fmt.Fprintf(stderr, "ocrflow run: --content %q is not simple-content or dir\n", *contentStore)
		return exitError(2)
	}
	var hints map[string]string
	if *format != "" {
		outs, err := job.ParseOutputs(*format)
		if err != nil {
			fmt.Fprintf(stderr, "ocrflow run: --format %q: %v\n", *format, err)
			return exitError(2)
		}
		hints = map[string]string{"output_format": strings.Join(outs, ",")}
	}
	files, err := expand(fs.Args(), stderr)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New("no supported documents found")
	}

	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if *eng != "" {
		cfg.Engine = *eng
	}
	if _, set := os.LookupEnv("LOG_LEVEL"); !set {
		cfg.LogLevel = "warn"
	}
	cfg.Stages = stage.Pipeline()
	cfg.OutputDir = *out
	log := newLogger(stderr, cfg.LogLevel)

	// A run is self-contained: its scratch space and its NATS store live in
	// a temporary directory removed at exit.
	work, err := os.MkdirTemp("", "ocrflow-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfg.NATSURL, cfg.NATSListen = "", ""
	cfg.NATSStoreDir = filepath.Join(work, "nats")
	cfg.BlobURL = "file://" + filepath.Join(work, "blobs")
	var opts app.Options
	var local *localContent // the embedded simple-content, with --content simple-content
	if *contentStore == config.ContentDir {
		roots := make([]string, 0, len(files))
		for _, f := range files {
			roots = append(roots, filepath.Dir(f))
		}
		if opts.Content, err = app.OpenDir(cfg, roots...); err != nil {
			return err
		}
	} else {
		// simple-content's handlers log every request on the default logger.
		slog.SetDefault(log)
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		if local, err = startLocalContent(ctx, cfg, log); err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = local.close(cctx)
		}()
		opts.Content = local.store
	}
	p, err := startPipeline(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	lifecycle, err := p.rt.Follow(followCtx, standalone.LifecycleSubjects)
	if err != nil {
		return errors.Join(err, p.stop())
	}
	rt := p.rt

	start := time.Now()
	jobs := map[string]*runJob{}
	order := make([]*runJob, 0, len(files))
	suffix := randomSuffix()
	for i, f := range files {
		j := &runJob{id: fmt.Sprintf("run-%s-%d", suffix, i+1), file: f, name: filepath.Base(f)}
		spec := job.Spec{ID: j.id, Location: f, Name: j.name, Source: "ocrflow/run", Hints: hints}
		if local != nil {
			id, err := local.upload(ctx, f)
			if err != nil {
				return errors.Join(fmt.Errorf("upload %s to simple-content: %w", j.name, err), p.stop())
			}
			spec = job.Spec{ID: j.id, ContentID: id, Name: j.name, TenantID: localTenant, OwnerID: localOwner, Source: "ocrflow/run", Hints: hints}
		}
		e, err := job.NewEvent(spec)
		if err != nil {
			return errors.Join(err, p.stop())
		}
		if err := scratch.Submit(ctx, p.app.Scratch(), j.id, "ocrflow run", e); err != nil {
			return errors.Join(fmt.Errorf("keep job %s: %w", j.id, err), p.stop())
		}
		if err := rt.Send(ctx, e); err != nil {
			return errors.Join(err, p.stop())
		}
		jobs[j.id] = j
		order = append(order, j)
	}
	fmt.Fprintf(stdout, "ocrflow: %d document(s), engine %s, content store %s\n", len(files), p.app.Engine().Name(), *contentStore)
	if local != nil {
		fmt.Fprintf(stdout, "  simple-content (embedded): %s%s\n", local.srv.URL(), simplecontent.APIPrefix)
	}

	pending := len(order)
	for pending > 0 {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr, "ocrflow run: interrupted")
			_ = p.stop()
			return exitError(130)
		case e, ok := <-lifecycle:
			if !ok {
				return errors.Join(errors.New("lifecycle stream closed"), p.stop())
			}
			id, _ := e.Extensions()[events.ExtJob].(string)
			j := jobs[id]
			if j == nil || j.done {
				continue
			}
			j.observe(e, stdout)
			if j.done && j.ok && local != nil {
				j.fetch(ctx, local, *out, stdout)
			}
			if j.done {
				pending--
			}
		}
	}
	stopFollow()
	if err := p.stop(); err != nil {
		return err
	}
	return summary(stdout, order, time.Since(start))
}

type runJob struct {
	id, file, name string
	done           bool
	ok             bool
	pages          int
	failedPages    int
	result         string
	// results maps each stored output to its derived content.
	results map[string]string
	msg     string
	ms      int64
}

// fetch downloads each of the job's derived contents from the embedded
// simple-content into out/<name>.md (.json, .ocr.pdf) and reports where
// they are; the job's result is the markdown's file, or the first's.
func (j *runJob) fetch(ctx context.Context, local *localContent, out string, w io.Writer) {
	refs := j.results
	if len(refs) == 0 {
		refs = map[string]string{job.OutputMarkdown: j.result}
	}
	first := ""
	for _, f := range job.Outputs {
		derived, ok := refs[f]
		if !ok {
			continue
		}
		p := filepath.Join(out, j.name+content.Extension(f))
		if err := local.save(ctx, derived, p); err != nil {
			j.ok, j.msg = false, "download derived content "+derived+": "+err.Error()
			fmt.Fprintf(w, "  %-28s FAILED (%s)\n", j.name, j.msg)
			return
		}
		if first == "" {
			first = p
		}
		fmt.Fprintf(w, "  %-28s derived content %s (%s) saved to %s\n", j.name, derived, local.where(derived), p)
	}
	j.result = first
}

func (j *runJob) observe(e event.Event, w io.Writer) {
	switch e.Type() {
	case events.TypeJobStarted:
		var s events.JobStarted
		if events.Decode(e, &s) == nil {
			j.pages = s.Pages
			fmt.Fprintf(w, "  %-28s started: %s, %d page(s)\n", j.name, s.SourceFormat, s.Pages)
		}
	case events.TypeJobProgress:
		var p events.JobProgress
		if events.Decode(e, &p) == nil {
			fmt.Fprintf(w, "  %-28s %d/%d pages (%d%%)\n", j.name, p.PagesCompleted, p.TotalPages, p.Percent)
		}
	case events.TypeJobCompleted:
		var c events.JobCompleted
		if events.Decode(e, &c) == nil {
			j.done, j.ok = true, true
			j.pages, j.failedPages, j.result, j.ms = c.PageCount, len(c.FailedPages), c.DerivedContentID, c.ProcessingTimeMS
			j.results = c.DerivedContents
			fmt.Fprintf(w, "  %-28s completed → %s\n", j.name, c.DerivedContentID)
			for _, f := range job.Outputs {
				if ref, ok := c.DerivedContents[f]; ok && ref != c.DerivedContentID {
					fmt.Fprintf(w, "  %-28s %s → %s\n", j.name, f, ref)
				}
			}
			for f, why := range c.UnavailableOutputs {
				fmt.Fprintf(w, "  %-28s no %s: %s\n", j.name, f, why)
			}
		}
	case events.TypeJobFailed:
		var f events.JobFailed
		if events.Decode(e, &f) == nil {
			j.done = true
			j.msg = f.ErrorType + ": " + f.Message
			fmt.Fprintf(w, "  %-28s FAILED (%s)\n", j.name, j.msg)
		}
	}
}

func summary(w io.Writer, jobs []*runJob, elapsed time.Duration) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOCUMENT\tSTATUS\tPAGES\tFAILED PAGES\tTIME\tRESULT")
	failed, pages := 0, 0
	for _, j := range jobs {
		status, result := "ok", j.result
		if !j.ok {
			status, result = "failed", j.msg
			failed++
		} else if j.failedPages > 0 {
			status = "partial"
		}
		pages += j.pages
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1fs\t%s\n", j.name, status, j.pages, j.failedPages, float64(j.ms)/1000, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d document(s), %d page(s), %d failed, %.1fs\n", len(jobs), pages, failed, elapsed.Seconds())
	if failed > 0 {
		return exitError(1)
	}
	return nil
}

// expand turns the arguments into absolute file paths; directories are
// walked for files whose content is a supported document.
func expand(args []string, stderr io.Writer) ([]string, error) {
	var out []string
	for _, a := range args {
		abs, err := filepath.Abs(a)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, abs)
			continue
		}
		skipped := 0
		err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != abs {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if _, _, err := render.Sniff(p); err != nil {
				skipped++
				return nil
			}
			out = append(out, p)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if skipped > 0 {
			fmt.Fprintf(stderr, "ocrflow run: skipped %d file(s) in %s that are not supported documents\n", skipped, a)
		}
	}
	return out, nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
