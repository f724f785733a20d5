package app

import (
	"context"
	"log/slog"

	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/inproc"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// SyncOptions are what NewSync needs besides the configuration.
type SyncOptions struct {
	// Log receives the pipeline's logs; nil discards them.
	Log *slog.Logger
	// Engine replaces the engine the configuration would open (tests).
	Engine engine.Engine
	// BackoffScale multiplies the Triggers' retry backoffs (default 1).
	BackoffScale float64
	// Metrics receives the pipeline's metrics (the API's registry, so
	// /metrics shows synchronous OCR too); nil makes a registry of its own.
	Metrics *obs.Metrics
}

// NewSync returns the runner of synchronous OCR (POST /v1/ocr): one
// long-lived pipeline on the in-process transport (shared/inproc),
// assembled by Open like every other — the same stages, middleware and
// routing — on a memory scratch store and a content store that reads each
// request's document and captures its markdown. It serves every stage of
// the pipeline whatever OCR_STAGES says, converts at most SYNC_MAX_PAGES
// pages (MAX_PAGES when smaller) of at most SYNC_MAX_BYTES bytes
// (MAX_SOURCE_BYTES when smaller), and opens on first use.
func NewSync(cfg config.Config, o SyncOptions) (*inproc.Runner, error) {
	cfg.Stages = stage.Pipeline()
	if cfg.SyncMaxPages > 0 && (cfg.MaxPages == 0 || cfg.SyncMaxPages < cfg.MaxPages) {
		cfg.MaxPages = cfg.SyncMaxPages
	}
	if cfg.SyncMaxBytes > 0 && (cfg.MaxSourceBytes == 0 || cfg.SyncMaxBytes < cfg.MaxSourceBytes) {
		cfg.MaxSourceBytes = cfg.SyncMaxBytes
	}
	tcfg, err := inproc.ConfigFrom(cfg, o.Log)
	if err != nil {
		return nil, err
	}
	tcfg.BackoffScale = o.BackoffScale
	return inproc.NewRunner(inproc.RunnerConfig{
		Transport: tcfg,
		Log:       o.Log,
		Open: func(ctx context.Context, p inproc.Ports) (func(context.Context) error, error) {
			a, err := Open(ctx, cfg, Options{Transport: p.Transport, Log: o.Log, Scratch: p.Scratch, Content: p.Content, Engine: o.Engine, Metrics: o.Metrics})
			if err != nil {
				return nil, err
			}
			return a.Close, nil
		},
	}), nil
}
