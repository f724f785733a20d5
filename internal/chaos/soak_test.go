//go:build soak

package chaos_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/ocrflow/ocrflow/internal/chaos"
	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/status"
)

// sample is one reading of one worker.
type sample struct {
	at                    time.Duration
	worker                string
	rssMiB                float64
	goroutines, fds       float64
	pending, done, inFlow int
}

// soakDoc is a document the soak submits over and over: a born-digital
// PDF (its text layer), a scanned one (the engine), an office file.
type soakDoc struct {
	name, mime string
	body       []byte
	pages      int
	tag        int // marked pages (scanned): checked page by page
}

// TestSoak runs documents mixing born-digital, scanned and office files
// through two `ocrflow serve` processes and the fake vLLM for
// SOAK_DURATION (default 20 m), keeping a steady number of jobs in flight,
// and samples every worker's RSS, goroutines and open files and the
// pipeline's backlog every few seconds. It reports throughput, job latency
// percentiles and whether each resource stayed flat (the mean of the last
// quarter within 10 % of the mean of the second quarter, after a first
// quarter of warm-up; five minutes each in a 20-minute run), checks every
// job ended with every page exactly once and in order, and writes a CSV and
// a chart to SOAK_OUT.
func TestSoak(t *testing.T) {
	duration := 20 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil && d > 0 {
		duration = d
	}
	out := os.Getenv("SOAK_OUT")
	if out == "" {
		out = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(out, 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), duration+15*time.Minute)
	defer cancel()
	env, err := chaos.Start(ctx, chaos.Config{Bin: bin, Dir: t.TempDir(), Seed: 3,
		VLLM: vllmtest.Config{Latency: 150 * time.Millisecond, Capacity: 16}})
	require.NoError(t, err)
	defer func() { assert.NoError(t, env.Close(context.Background())) }()

	docs := soakDocs(t)
	const inFlight = 12
	var (
		jobs      []chaos.Job
		submitted = map[string]time.Time{}
		latencies []time.Duration
		open      = map[string]bool{}
		samples   []sample
		pages     int
		n         int
	)
	start := time.Now()
	submitOne := func() {
		d := docs[n%len(docs)]
		n++
		id, err := env.Upload(ctx, fmt.Sprintf("soak-%d-%s", n, d.name), d.body)
		require.NoError(t, err)
		jobID := fmt.Sprintf("soak-%d", n)
		e, err := job.NewEvent(job.Spec{ID: jobID, ContentID: id, TenantID: chaos.Tenant, OwnerID: chaos.Owner})
		require.NoError(t, err)
		require.NoError(t, env.Publish(ctx, e))
		j := chaos.Job{ID: jobID, ContentID: id}
		if d.tag > 0 { // marked pages: checked one by one, in order
			j.Tag, j.Pages = d.tag, d.pages
		}
		jobs = append(jobs, j)
		submitted[jobID] = time.Now()
		open[jobID] = true
	}
	next := time.Now()
	for time.Since(start) < duration {
		for len(open) < inFlight {
			submitOne()
		}
		for id := range open {
			st, err := status.Read(ctx, env.Scratch, id, time.Now())
			if err != nil || !st.State.Terminal() {
				continue
			}
			require.Equal(t, status.Completed, st.State, "job %s: %s %s", id, st.ErrorType, st.ErrorMessage)
			latencies = append(latencies, time.Since(submitted[id]))
			pages += st.Pages.Total
			delete(open, id)
		}
		if time.Now().After(next) {
			pending, err := env.Pending(ctx)
			require.NoError(t, err)
			for _, p := range env.Workers {
				rss, err := p.RSS()
				require.NoError(t, err)
				r, err := p.Resources(ctx)
				require.NoError(t, err)
				samples = append(samples, sample{at: time.Since(start), worker: p.Name, rssMiB: float64(rss) / (1 << 20),
					goroutines: r.Goroutines, fds: r.FDs, pending: pending, done: len(latencies), inFlow: len(open)})
			}
			next = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	states, err := env.Wait(ctx, jobs, 5*time.Minute)
	require.NoError(t, err)
	problems := env.Verify(ctx, jobs, states)
	for _, p := range problems {
		t.Error(p)
	}

	require.NoError(t, writeCSV(filepath.Join(out, "soak.csv"), samples))
	require.NoError(t, writeChart(filepath.Join(out, "soak.png"), samples))
	report := flatness(samples, duration)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1))] }
	summary := fmt.Sprintf("%s soak: %d jobs (%d pages) completed in %s — %.1f jobs/min, %.1f pages/s; job latency p50 %s, p99 %s; %d lost or duplicated pages\n\n%s",
		duration, len(latencies), pages, elapsed.Round(time.Second), float64(len(latencies))/elapsed.Minutes(), float64(pages)/elapsed.Seconds(),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), len(problems), report.table)
	require.NoError(t, os.WriteFile(filepath.Join(out, "summary.md"), []byte(summary), 0o644))
	t.Log(summary)
	for _, bad := range report.grew {
		t.Errorf("not flat: %s", bad)
	}
}

// soakDocs are the documents the soak cycles through.
func soakDocs(t *testing.T) []soakDoc {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", p))
		require.NoError(t, err)
		return b
	}
	var docs []soakDoc
	docs = append(docs, soakDoc{name: "report.pdf", mime: "application/pdf", body: read("report.pdf"), pages: 6})
	for tag := 1; tag <= 3; tag++ {
		b, err := vllmtest.Document(tag, 4, 566, 800)
		require.NoError(t, err)
		docs = append(docs, soakDoc{name: "scan-" + strconv.Itoa(tag) + ".pdf", mime: "application/pdf", body: b, pages: 4, tag: tag})
	}
	docs = append(docs, soakDoc{name: "report.docx", mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		body: read("office/report.docx")})
	return docs
}

// flatReport says, per worker and resource, whether it stayed flat.
type flatReport struct {
	table string
	grew  []string
}

// flatness compares, per worker, the mean of each resource over the last
// quarter of the run with its mean over the second quarter (the first is
// warm-up): within 10 % plus a small absolute slack is flat (a handful of
// goroutines or descriptors come and go with the load at the sampling
// instant; a leak grows without bound and passes any slack in a long run).
func flatness(samples []sample, duration time.Duration) flatReport {
	q := duration / 4
	var r flatReport
	var b strings.Builder
	b.WriteString("| Worker | Resource | 2nd quarter mean | last quarter mean | change | flat |\n|---|---|---|---|---|---|\n")
	workers := map[string]bool{}
	for _, s := range samples {
		workers[s.worker] = true
	}
	names := make([]string, 0, len(workers))
	for w := range workers {
		names = append(names, w)
	}
	sort.Strings(names)
	for _, w := range names {
		for _, res := range []struct {
			name  string
			get   func(sample) float64
			slack float64
		}{
			{"RSS (MiB)", func(s sample) float64 { return s.rssMiB }, 0},
			{"goroutines", func(s sample) float64 { return s.goroutines }, 10},
			{"open files", func(s sample) float64 { return s.fds }, 5},
		} {
			mean := func(from, to time.Duration) float64 {
				sum, n := 0.0, 0
				for _, s := range samples {
					if s.worker == w && s.at >= from && s.at < to {
						sum += res.get(s)
						n++
					}
				}
				if n == 0 {
					return 0
				}
				return sum / float64(n)
			}
			early, late := mean(q, 2*q), mean(3*q, duration)
			change := 0.0
			if early > 0 {
				change = (late - early) / early
			}
			flat := late <= early*1.10+res.slack
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %+.1f %% | %v |\n", w, res.name, early, late, 100*change, flat)
			if !flat {
				r.grew = append(r.grew, fmt.Sprintf("%s %s %.1f → %.1f", w, res.name, early, late))
			}
		}
	}
	r.table = b.String()
	return r
}

func writeCSV(path string, samples []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"seconds", "worker", "rss_mib", "goroutines", "open_files", "pending", "jobs_done", "jobs_in_flight"})
	for _, s := range samples {
		_ = w.Write([]string{
			strconv.FormatFloat(s.at.Seconds(), 'f', 1, 64), s.worker, strconv.FormatFloat(s.rssMiB, 'f', 1, 64),
			strconv.FormatFloat(s.goroutines, 'f', 0, 64), strconv.FormatFloat(s.fds, 'f', 0, 64),
			strconv.Itoa(s.pending), strconv.Itoa(s.done), strconv.Itoa(s.inFlow),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// writeChart draws RSS per worker and throughput (jobs finished per minute)
// over time, one above the other.
func writeChart(path string, samples []sample) error {
	rss := plot.New()
	rss.Title.Text = "RSS of each ocrflow serve process"
	rss.X.Label.Text = "minutes"
	rss.Y.Label.Text = "MiB"
	rss.Y.Min = 0
	colors := []color.Color{color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255}}
	byWorker := map[string]plotter.XYs{}
	var workers []string
	for _, s := range samples {
		if _, ok := byWorker[s.worker]; !ok {
			workers = append(workers, s.worker)
		}
		byWorker[s.worker] = append(byWorker[s.worker], plotter.XY{X: s.at.Minutes(), Y: s.rssMiB})
	}
	for i, w := range workers {
		l, err := plotter.NewLine(byWorker[w])
		if err != nil {
			return err
		}
		l.Color = colors[i%len(colors)]
		rss.Add(l)
		rss.Legend.Add(w, l)
	}
	tput := plot.New()
	tput.Title.Text = "Throughput"
	tput.X.Label.Text = "minutes"
	tput.Y.Label.Text = "jobs finished per minute"
	tput.Y.Min = 0
	var pts plotter.XYs
	var last sample
	for _, s := range samples {
		if s.worker != workers[0] {
			continue
		}
		if last.at > 0 {
			if dt := (s.at - last.at).Minutes(); dt > 0 {
				pts = append(pts, plotter.XY{X: s.at.Minutes(), Y: float64(s.done-last.done) / dt})
			}
		}
		last = s
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	tput.Add(l)
	img := vgimg.New(9*vg.Inch, 7*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{rss}, {tput}}, tiles, dc)
	rss.Draw(canvases[0][0])
	tput.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
