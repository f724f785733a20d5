package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/pipeline"
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
The blob store (BLOB_URL) must be shared by all of them.
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
	rt, err := startRuntime(ctx, cfg, log, cfg.NATSListen)
	if err != nil {
		return err
	}
	if url := rt.ClientURL(); url != "" {
		log.Info("embedded nats-server", "url", url, "store", cfg.NATSStoreDir)
	}
	blobs, err := pipeline.OpenBlobs(ctx, cfg)
	if err != nil {
		return closeAfter(rt, cfg, err)
	}
	store, err := pipeline.NewContent(ctx, cfg, log)
	if err != nil {
		return closeAfter(rt, cfg, err)
	}
	var eng engine.Engine
	if cfg.Serves(config.StageRecognize) {
		if eng, err = pipeline.NewEngine(ctx, cfg); err != nil {
			return closeAfter(rt, cfg, err)
		}
	}
	stages, err := pipeline.Build(cfg, pipeline.Ports{Blobs: blobs, Content: store, Engine: eng, Sender: rt, Log: log})
	if err != nil {
		return closeAfter(rt, cfg, err)
	}
	if err := rt.Serve(ctx, pipeline.Services(stages)...); err != nil {
		return closeAfter(rt, cfg, err)
	}
	log.Info("serving", "stages", cfg.Stages, "engine", cfg.Engine, "blobs", cfg.BlobURL, "content", cfg.Content())
	<-ctx.Done()
	log.Info("stopping: finishing in-flight work", "timeout", cfg.ShutdownTimeout)
	return closeAfter(rt, cfg, nil)
}

// startRuntime connects to NATS_URL or starts the embedded server (with
// listen as its client address; "" for in-process only).
func startRuntime(ctx context.Context, cfg config.Config, log *slog.Logger, listen string) (*standalone.Runtime, error) {
	triggers, err := pipeline.Triggers(cfg)
	if err != nil {
		return nil, err
	}
	return standalone.New(ctx, standalone.Config{
		URL:        cfg.NATSURL,
		Server:     standalone.ServerConfig{StoreDir: cfg.NATSStoreDir, Listen: listen},
		JobSubject: cfg.JobSubject,
		Triggers:   triggers,
		Log:        log,
	})
}

func closeAfter(rt *standalone.Runtime, cfg config.Config, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if cerr := rt.Close(ctx); err == nil {
		err = cerr
	}
	return err
}
