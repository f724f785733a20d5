// Package pipeline wires the stages to their ports from configuration. The
// CLI, the Knative function and the tests all build the pipeline here, so
// they run the same handlers with the same middleware.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/functions/autoocr"
	"github.com/ocrflow/ocrflow/functions/convert"
	"github.com/ocrflow/ocrflow/functions/deadletter"
	"github.com/ocrflow/ocrflow/functions/finalize"
	"github.com/ocrflow/ocrflow/functions/recognize"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/libreoffice"
	"github.com/ocrflow/ocrflow/shared/office"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

// ServiceName returns the Knative Service name of a stage, as the Trigger
// manifests reference it.
func ServiceName(stageName string) string { return "ocrflow-" + stageName }

// ContentStore is where sources come from and results go to.
type ContentStore interface {
	convert.Fetcher
	finalize.Storer
}

// Ports are the pipeline's dependencies.
type Ports struct {
	Blobs   scratch.Store
	Content ContentStore
	// Engine is required only when the recognize stage is served.
	Engine engine.Engine
	Sender convert.Sender
	Log    *slog.Logger
}

// Stage is a built stage.
type Stage struct {
	Name    string
	Handler stage.Handler
	Workers int
}

// Build returns the handlers of the stages cfg selects, each wrapped in the
// standard middleware (logging, panic recovery).
func Build(cfg config.Config, p Ports) ([]Stage, error) {
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wrap := func(name string, h stage.Handler) stage.Handler {
		return stage.Chain(h, stage.Log(log, name), stage.Recover(log))
	}
	engineName := cfg.Engine
	if p.Engine != nil {
		engineName = p.Engine.Name()
	}
	recipe := RecipeFor(cfg, engineName)
	ecfg := EngineConfig(cfg)
	ecfg.Name = engineName
	if engineName == engine.NameVLLM {
		// A model server's results differ by model and mode, not by name.
		recipe.Model, recipe.Mode = engine.Describe(ecfg)
	}
	var out []Stage
	for _, name := range cfg.Stages {
		var h stage.Handler
		workers := 1
		switch name {
		case config.StageConvert:
			pdf, err := officeConverter(cfg, log)
			if err != nil {
				return nil, err
			}
			h = convert.New(convert.Config{
				Target: engine.TargetFor(ecfg),
				Limits: render.Limits{MaxPages: cfg.MaxPages, MaxImagePixels: cfg.MaxImagePixels, Isolation: render.Isolation{
					Enabled: cfg.RenderIsolation == "process", MemoryBytes: cfg.RenderMemory, CallTimeout: cfg.RenderTimeout,
				}},
				MaxSourceBytes: cfg.MaxSourceBytes,
				TextLayer:      textlayer.Mode(cfg.TextLayer),
				OfficeMode:     office.Mode(cfg.OfficeMode),
				PDF:            pdf,
				Slice:          cfg.ConvertSlice,
				Recipe:         recipe,
			}, p.Blobs, p.Content, p.Sender, log).Handle
			workers = cfg.ConvertWorkers
		case config.StageRecognize:
			if p.Engine == nil {
				return nil, fmt.Errorf("pipeline: the recognize stage needs an engine")
			}
			h = recognize.New(recognize.Config{PageTimeout: cfg.PageTimeout, RetryWindow: retryWindow(name)}, p.Blobs, p.Engine, log).Handle
			workers = cfg.Recognizers()
		case config.StageFinalize:
			h = finalize.New(p.Blobs, p.Content, recipe, log).Handle
		case config.StageDeadLetter:
			h = deadletter.New(p.Blobs, log).Handle
		case config.StageAutoOCR:
			h = autoocr.New(autoocr.Policy{
				MIMETypes: cfg.AutoOCRMIMETypes, Tenants: cfg.AutoOCRTenants, ExcludeTenants: cfg.AutoOCRExclude,
			}, log).Handle
		default:
			return nil, fmt.Errorf("pipeline: unknown stage %q", name)
		}
		out = append(out, Stage{Name: name, Handler: wrap(name, h), Workers: workers})
	}
	return out, nil
}

// officeConverter returns the LibreOffice converter for OFFICE_MODE render
// and auto. Without LibreOffice, render mode is a start-up error; auto
// mode runs on (legacy formats are then refused with a message saying so)
// and returns a nil converter.
func officeConverter(cfg config.Config, log *slog.Logger) (convert.PDFConverter, error) {
	if office.Mode(cfg.OfficeMode) == office.ModeNative {
		return nil, nil
	}
	conv, err := libreoffice.New(libreoffice.Config{
		Binary: cfg.LibreOffice, Timeout: cfg.LibreOfficeTime, Parallel: cfg.LibreOfficeJobs, MemoryBytes: uint64(cfg.LibreOfficeMem),
	})
	switch {
	case err == nil:
		return conv, nil
	case office.Mode(cfg.OfficeMode) == office.ModeRender:
		return nil, fmt.Errorf("pipeline: OFFICE_MODE=render: %w", err)
	default:
		log.Warn("LibreOffice not found: DOC/XLS/PPT and OpenDocument files will be refused, picture-led DOCX/PPTX/XLSX read natively", "error", err)
		return nil, nil
	}
}

// retryWindow is the earliest age at which an event reaches its last
// delivery under the Trigger of a stage: the sum of the Trigger's backoffs
// (0 when it cannot be read).
func retryWindow(stageName string) time.Duration {
	ts, err := eventing.Triggers()
	if err != nil {
		return 0
	}
	for _, t := range ts {
		if t.Subscriber != ServiceName(stageName) {
			continue
		}
		var w time.Duration
		for n := 1; n <= t.Delivery.Retry; n++ {
			w += t.Delivery.Backoff(n)
		}
		return w
	}
	return 0
}

// Triggers returns the standalone routing for cfg: the Triggers of
// eventing/, plus the optional autoocr Trigger (filtering on
// AUTOOCR_EVENT_TYPE) when that stage is served.
func Triggers(cfg config.Config) ([]eventing.Trigger, error) {
	ts, err := eventing.Triggers()
	if err != nil || !cfg.Serves(config.StageAutoOCR) {
		return ts, err
	}
	opt, err := eventing.OptionalTriggers()
	if err != nil {
		return nil, err
	}
	for _, t := range opt {
		if t.Subscriber == ServiceName(config.StageAutoOCR) {
			t.Exact["type"] = cfg.AutoOCRType
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// Services adapts built stages to the standalone runtime.
func Services(stages []Stage) []standalone.Service {
	out := make([]standalone.Service, len(stages))
	for i, s := range stages {
		out[i] = standalone.Service{Name: ServiceName(s.Name), Handler: s.Handler, Workers: s.Workers}
	}
	return out
}

// Checker is an optional engine capability: report whether it can run.
type Checker interface {
	Check(ctx context.Context) error
}

// EngineConfig maps the configuration onto the engine's. The fallback
// engine takes over on the transport's last delivery attempt
// (stage.LastAttempt).
func EngineConfig(cfg config.Config) engine.Config {
	return engine.Config{
		Name: cfg.Engine, TesseractLangs: cfg.TesseractLangs,
		URL: cfg.EngineURL, Model: cfg.Model, APIKey: cfg.APIKey, Profile: cfg.Profile, Mode: cfg.Mode,
		MaxTokens: cfg.MaxTokens, MaxInflight: cfg.MaxInflight, Fallback: cfg.FallbackEngine,
		LastAttempt: stage.LastAttempt,
	}
}

// NewEngine builds the engine cfg names and checks it when it can.
func NewEngine(ctx context.Context, cfg config.Config) (engine.Engine, error) {
	eng, err := engine.New(EngineConfig(cfg))
	if err != nil {
		return nil, err
	}
	if c, ok := eng.(Checker); ok {
		if err := c.Check(ctx); err != nil {
			return nil, err
		}
	}
	return eng, nil
}

// NewDirContent returns the directory content store cfg describes.
func NewDirContent(cfg config.Config, roots ...string) (*content.Dir, error) {
	if len(roots) == 0 {
		roots = []string{cfg.ContentDir}
	}
	return content.NewDir(roots, cfg.OutputDir)
}
