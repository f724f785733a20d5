package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ocrflow serve

Serves the stages named by OCR_STAGES (default: all) on NATS_URL, or on an
embedded nats-server with JetStream listening on NATS_LISTEN when NATS_URL
is empty. Several serve processes share the work through durable consumers.
The blob store (BLOB_URL) must be shared by all of them. Prometheus metrics
are served at /metrics on METRICS_ADDR (default :9464; empty: off).
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	p, err := startPipeline(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	if url := p.rt.ClientURL(); url != "" {
		log.Info("embedded nats-server", "url", url, "store", cfg.NATSStoreDir)
	}
	var metrics *obs.MetricsServer
	if cfg.MetricsAddr != "" {
		if metrics, err = obs.ServeMetrics(cfg.MetricsAddr, p.app.Metrics()); err != nil {
			return errors.Join(err, p.stop())
		}
		log.Info("metrics", "url", "http://"+metrics.Addr()+obs.MetricsPath)
	}
	log.Info("serving", "stages", cfg.Stages, "engine", cfg.Engine, "blobs", cfg.BlobURL, "content", cfg.Content())
	<-ctx.Done()
	log.Info("stopping: finishing in-flight work", "timeout", cfg.ShutdownTimeout)
	err = p.stop()
	if metrics != nil {
		// Last, so the final scrape sees the drained work.
		mctx, cancel := context.WithTimeout(context.Background(), obs.ShutdownTimeout)
		defer cancel()
		err = errors.Join(err, metrics.Close(mctx))
	}
	return err
}

// pipeline is the standalone runtime with the pipeline assembled on it.
type pipeline struct {
	cfg config.Config
	rt  *standalone.Runtime
	app *app.App
}

// startRuntime connects to NATS_URL or starts the embedded server with
// the configuration's routing (listening on NATS_LISTEN; "" for
// in-process connections only).
func startRuntime(ctx context.Context, cfg config.Config, log *slog.Logger) (*standalone.Runtime, error) {
	// The runtime's lines about an event carry its trace id.
	rcfg, err := standalone.ConfigFrom(cfg, obs.Logger(log))
	if err != nil {
		return nil, err
	}
	return standalone.New(ctx, rcfg)
}

// connectRuntime connects to the NATS a client command publishes to: url
// (its --nats flag) when set, else NATS_URL, else the local `ocrflow
// serve`'s embedded server at NATS_LISTEN — and returns the URL it chose.
// It never starts a server.
func connectRuntime(ctx context.Context, cfg config.Config, url string, log *slog.Logger) (*standalone.Runtime, string, error) {
	switch {
	case url != "":
		cfg.NATSURL = url
	case cfg.NATSURL == "":
		cfg.NATSURL = "nats://" + cfg.NATSListen
	}
	rt, err := startRuntime(ctx, cfg, log)
	return rt, cfg.NATSURL, err
}

// startPipeline starts the standalone runtime and assembles the pipeline
// of cfg on it (app.Open; o supplies ports the command has opened itself).
func startPipeline(ctx context.Context, cfg config.Config, log *slog.Logger, o app.Options) (*pipeline, error) {
	rt, err := startRuntime(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	o.Transport, o.Log = rt, log
	a, err := app.Open(ctx, cfg, o)
	if err != nil {
		return nil, errors.Join(err, closeRuntime(rt, cfg))
	}
	return &pipeline{cfg: cfg, rt: rt, app: a}, nil
}

// stop drains the runtime within SHUTDOWN_TIMEOUT, then closes the ports.
func (p *pipeline) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(p.rt.Close(ctx), p.app.Close(ctx))
}

// closeRuntime drains rt within SHUTDOWN_TIMEOUT.
func closeRuntime(rt *standalone.Runtime, cfg config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return rt.Close(ctx)
}
