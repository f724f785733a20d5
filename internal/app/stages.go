package app

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

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
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/office"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

// RecipeFor returns what keys and describes results under cfg. It comes
// from configuration, not from an engine instance, because convert and
// finalize may run where no engine is built and must still agree with
// each other on every pod. engineName overrides cfg.Engine when an engine
// instance is at hand (tests inject engines by value). The model is what
// changes the output: tesseract with its languages, a model server's
// served model (OCR_MODEL, else the profile's default); the mode is
// OCR_MODE, else the engine's default.
func RecipeFor(cfg config.Config, engineName string) content.Recipe {
	if engineName == "" {
		engineName = cfg.Engine
	}
	model, mode := engineName, cfg.Mode
	switch engineName {
	case engine.NameTesseract:
		if cfg.TesseractLangs != "" {
			model += ":" + cfg.TesseractLangs
		}
	case engine.NameVLLM:
		ecfg := EngineConfig(cfg)
		ecfg.Name = engineName
		model, mode = engine.Describe(ecfg)
	}
	if mode == "" {
		mode = content.DefaultMode
	}
	return content.Recipe{PipelineVersion: content.PipelineVersion, Engine: engineName, Model: model, Mode: mode}
}

// build returns the stages OCR_STAGES selects, each wrapped in the
// standard middleware (observation, logging, panic recovery), with send as
// convert's Sender. The stages see the engine and the content store
// through their metrics decorators.
func (a *App) build(send convert.Sender) ([]stage.Stage, error) {
	cfg, log := a.cfg, a.log
	ecfg := EngineConfig(cfg)
	ecfg.Name = a.recipe.Engine // the engine at hand, when one was injected
	store := observeContent(a.content, a.metrics)
	eng := observeEngine(a.engine, a.metrics)
	tracer := func(pkg string) trace.Tracer { return a.tracing.Tracer("github.com/ocrflow/ocrflow/functions/" + pkg) }
	var out []stage.Stage
	for _, name := range cfg.Stages {
		var h stage.Handler
		var demand func() int
		workers := 1
		switch name {
		case stage.Convert:
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
				Temp:           a.temp,
				Recipe:         a.recipe,
				Outputs:        cfg.Outputs,
				Tracer:         tracer("convert"),
			}, a.scratch, store, send, log).Handle
			workers = cfg.ConvertWorkers
		case stage.Recognize:
			if a.engine == nil {
				return nil, fmt.Errorf("app: the recognize stage needs an engine")
			}
			h = recognize.New(recognize.Config{
				PageTimeout: cfg.PageTimeout, RetryWindow: retryWindow(name), Tracer: tracer("recognize"),
			}, a.scratch, eng, log).Handle
			workers = cfg.Recognizers()
			// The in-flight limit decides how many pages are worth
			// holding (nil for engines without one).
			demand = engine.DemandOf(a.engine)
		case stage.Finalize:
			h = finalize.New(finalize.Config{
				Recipe: a.recipe, Tracer: tracer("finalize"), MaxPageErrorRate: cfg.MaxPageErrorRate,
				ProgressInterval: cfg.ProgressInterval, ProgressPages: cfg.ProgressPages, TempDir: a.temp.Root(),
				LockLease: deliveryTimeout(name) + 15*time.Second,
			}, a.scratch, store, log).Handle
		case stage.DeadLetter:
			traces, _ := a.content.(content.FailureRecorder) // nil when the store keeps none
			h = deadletter.New(a.scratch, traces, a.recipe, log).Handle
		case stage.AutoOCR:
			h = autoocr.New(autoocr.Policy{
				MIMETypes: cfg.AutoOCRMIMETypes, Tenants: cfg.AutoOCRTenants, ExcludeTenants: cfg.AutoOCRExclude,
			}, log).Handle
		default:
			return nil, fmt.Errorf("app: unknown stage %q", name)
		}
		h = stage.Chain(h, obs.Stage(a.metrics, a.tracing, name), stage.Log(log, name), stage.Recover(log))
		out = append(out, stage.Stage{Name: name, Handler: h, Workers: workers, Demand: demand})
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
		return nil, fmt.Errorf("app: OFFICE_MODE=render: %w", err)
	default:
		log.Warn("LibreOffice not found: DOC/XLS/PPT and OpenDocument files will be refused, picture-led DOCX/PPTX/XLSX read natively", "error", err)
		return nil, nil
	}
}

// deliveryTimeout is the delivery timeout of the Trigger of a stage (30 s
// when it cannot be read): how long one handling may run.
func deliveryTimeout(stageName string) time.Duration {
	ts, err := eventing.Triggers()
	if err == nil {
		for _, t := range ts {
			if t.Subscriber == eventing.ServiceName(stageName) {
				return t.Delivery.Timeout
			}
		}
	}
	return 30 * time.Second
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
		if t.Subscriber != eventing.ServiceName(stageName) {
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
