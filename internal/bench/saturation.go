package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// SaturationConfig describes one saturation run: recognize processes
// feeding a fake vLLM server (shared/engine/vllmtest) of capacity C and
// latency L that queues beyond C, as vLLM's scheduler does, and serves
// /metrics.
type SaturationConfig struct {
	Capacity int
	Latency  time.Duration
	// Procs is how many recognize processes share the server (default 1):
	// each is an app with its own engine, in-flight limit and JetStream
	// connection, all pulling from one consumer.
	Procs int
	// Env is the configuration on top of OCR_ENGINE=vllm (nil: the
	// defaults — what the bench's saturation row is about).
	Env map[string]string
	// Pages is how many pages are waiting when the run starts.
	Pages int
}

// SaturationResult is what the server saw between the moment it first
// ran C requests at once (or its first request, when it never did) and
// the start of the last request.
type SaturationResult struct {
	// Busy is the time-weighted mean number of requests in service; Util
	// is Busy / C.
	Busy, Util float64
	// Queue is the time-weighted mean number of requests waiting at the
	// server, QueueMax the most at once.
	Queue    float64
	QueueMax int
	// Fill is how long after the first request the server first ran C at
	// once (0 when it never did); Window the span measured.
	Fill, Window time.Duration
	// Limits are the processes' in-flight limits at the end.
	Limits []int
	// Requests is the number of chat requests the server received.
	Requests int
}

// Saturation runs cfg: the pages are rendered images in scratch with their
// ocr.page.rendered events published before the processes start, so the
// figure is the recognize stage's (fetch, engine, store, publish, ack)
// and the limiter's, not convert's.
func Saturation(ctx context.Context, dir string, cfg SaturationConfig) (SaturationResult, error) {
	cfg.Procs = max(cfg.Procs, 1)
	srv, err := vllmtest.New(vllmtest.Config{Mode: "small", Capacity: cfg.Capacity, Latency: cfg.Latency})
	if err != nil {
		return SaturationResult{}, fmt.Errorf("saturation: %w", err)
	}
	defer srv.Close()
	dir, err = os.MkdirTemp(dir, "saturation-")
	if err != nil {
		return SaturationResult{}, fmt.Errorf("saturation: %w", err)
	}
	defer os.RemoveAll(dir)

	nats, err := standalone.StartServer(standalone.ServerConfig{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		return SaturationResult{}, fmt.Errorf("saturation: %w", err)
	}
	defer func() {
		nats.Shutdown()
		nats.WaitForShutdown()
	}()
	vars := map[string]string{
		"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": srv.URL(), "OCR_MODE": "small", "OCR_STAGES": "recognize",
		"NATS_URL": nats.ClientURL(), "LOG_LEVEL": "error",
	}
	maps.Copy(vars, cfg.Env)
	conf, err := config.FromLookup(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		return SaturationResult{}, fmt.Errorf("saturation: %w", err)
	}
	rcfg, err := standalone.ConfigFrom(conf, nil)
	if err != nil {
		return SaturationResult{}, fmt.Errorf("saturation: %w", err)
	}
	blobs := blob.NewMemory()
	store, err := contentdir.New([]string{dir}, filepath.Join(dir, "out"))
	if err != nil {
		return SaturationResult{}, fmt.Errorf("saturation: %w", err)
	}

	// The backlog: every page in scratch and its event in the stream.
	pub, err := standalone.New(ctx, rcfg)
	if err != nil {
		return SaturationResult{}, fmt.Errorf("saturation: %w", err)
	}
	defer pub.Close(context.Background()) //nolint:errcheck // nothing to serve, nothing to lose
	if err := backlog(ctx, pub, blobs, cfg.Pages); err != nil {
		return SaturationResult{}, err
	}

	start := time.Now()
	var apps []*app.App
	var rts []*standalone.Runtime
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, rt := range rts {
			_ = rt.Close(cctx)
		}
		for _, a := range apps {
			_ = a.Close(cctx)
		}
	}()
	for range cfg.Procs {
		rt, err := standalone.New(ctx, rcfg)
		if err != nil {
			return SaturationResult{}, fmt.Errorf("saturation: %w", err)
		}
		rts = append(rts, rt)
		a, err := app.Open(ctx, conf, app.Options{Transport: rt, Scratch: blobs, Content: store})
		if err != nil {
			return SaturationResult{}, fmt.Errorf("saturation: %w", err)
		}
		apps = append(apps, a)
	}

	// Wait until every page was answered.
	deadline := time.Now().Add(time.Duration(cfg.Pages)*cfg.Latency + 2*time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(srv.Stats().Answered) < cfg.Pages {
		if time.Now().After(deadline) {
			return SaturationResult{}, fmt.Errorf("saturation: %d of %d pages answered in time", len(srv.Stats().Answered), cfg.Pages)
		}
		select {
		case <-ctx.Done():
			return SaturationResult{}, ctx.Err()
		case <-tick.C:
		}
	}
	if v := srv.Violations(); len(v) > 0 {
		return SaturationResult{}, fmt.Errorf("saturation: the fake refused requests: %s", strings.Join(v[:min(3, len(v))], "; "))
	}

	first, last := srv.FirstLastStart(start)
	from := first
	res := SaturationResult{Requests: srv.Stats().Requests}
	if full := srv.FirstReach(cfg.Capacity, start); !full.IsZero() {
		from, res.Fill = full, full.Sub(first)
	}
	if !last.After(from) {
		return res, errors.New("saturation: too few requests to measure")
	}
	res.Window = last.Sub(from)
	res.Busy = srv.InFlightAverage(from, last)
	res.Util = res.Busy / float64(cfg.Capacity)
	res.Queue = srv.WaitingAverage(from, last)
	res.QueueMax = srv.WaitingMax(from, last)
	for _, a := range apps {
		if l, ok := a.Engine().(interface{ Limit() int }); ok {
			res.Limits = append(res.Limits, l.Limit())
		}
	}
	return res, nil
}

// backlog stores n marked page images (vllmtest.PageImage, so the fake
// can tell them apart) and publishes their ocr.page.rendered events.
func backlog(ctx context.Context, rt *standalone.Runtime, blobs *blob.Memory, n int) error {
	const job = "saturation"
	for p := 1; p <= n; p++ {
		tag, page := 1+(p-1)/vllmtest.MaxPage, 1+(p-1)%vllmtest.MaxPage
		var img bytes.Buffer
		if err := jpeg.Encode(&img, vllmtest.PageImage(tag, page, 453, 640, 0), &jpeg.Options{Quality: 80}); err != nil {
			return fmt.Errorf("saturation: page image: %w", err)
		}
		key := scratch.PageKey(job, p, "jpg")
		if err := blobs.Put(ctx, key, &img); err != nil {
			return fmt.Errorf("saturation: %w", err)
		}
		e, err := events.New(nil, events.PageRenderedID(job, p), events.TypePageRendered, "/ocrflow/bench", p, job, events.PageRendered{
			JobID: job, Page: p, Pages: n, Route: events.RouteOCR, ImageKey: key, Width: 453, Height: 640,
		})
		if err != nil {
			return fmt.Errorf("saturation: %w", err)
		}
		if err := rt.Send(ctx, e); err != nil {
			return fmt.Errorf("saturation: %w", err)
		}
	}
	return nil
}
