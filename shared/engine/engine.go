// Package engine recognizes page images as markdown. Each engine adapter
// owns its prompt, request shape, image sizing and output clean-up, because
// those differ per model family.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ocrflow/ocrflow/shared/render"
)

// Page is one page image to recognize.
type Page struct {
	JobID  string
	Number int
	// Image is the encoded page (JPEG or PNG) as convert rendered it.
	Image  []byte
	MIME   string
	Width  int
	Height int
	// Mode is the job's resolution/mode hint ("" = the engine's default).
	// Engines without modes ignore it; an unknown mode falls back to the
	// default rather than failing the page (hints are advisory).
	Mode string
}

// Result is an engine's answer for one page.
type Result struct {
	// Markdown is the cleaned page text.
	Markdown string
	// Raw is the engine's unprocessed output, kept beside the result.
	Raw string
	// Engine names the engine that produced the result when it is not the
	// one called (a fallback answered); "" means the called engine's Name.
	Engine string
	// Blocks are the layout blocks the model reported (DeepSeek grounding),
	// with boxes in page pixels; nil when the engine reports none.
	Blocks []Block
	// Meta holds page facts the model stated besides its text (olmOCR's
	// front matter: primary_language, rotation …); nil when none.
	Meta map[string]string
	// Usage is what the model server reported spending on the page, over
	// all the requests of the call (zero for engines that report none).
	// An engine that fails a page may still return it beside its error.
	Usage Usage
	// Steps lists the extra requests the call made for the page, each
	// named by the answer that caused it (StepLoop, StepEmpty,
	// StepRotate). An engine that fails a page may still return it beside
	// its error.
	Steps []string
}

// Usage counts the tokens of a model server's answers.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Add returns u plus v.
func (u Usage) Add(v Usage) Usage {
	return Usage{PromptTokens: u.PromptTokens + v.PromptTokens, CompletionTokens: u.CompletionTokens + v.CompletionTokens}
}

// Steps of the retry ladder: why an engine asked the model again.
const (
	// StepLoop: the answer looped (or ran into max_tokens).
	StepLoop = "loop"
	// StepEmpty: the answer had no text on a page that is not blank.
	StepEmpty = "empty"
	// StepRotate: the model asked for the page to be turned.
	StepRotate = "rotate"
)

// Names of the built-in engines.
const (
	NameTesseract = "tesseract"
	NameFake      = "fake"
	// NameVLLM is an OpenAI-compatible vision-language model server
	// (vLLM, KServe), driven through a Profile.
	NameVLLM = "vllm"
)

// Config selects and configures an engine.
type Config struct {
	// Name is tesseract, vllm or fake.
	Name string
	// TesseractLangs is passed to tesseract -l (e.g. "eng+deu").
	TesseractLangs string
	// TesseractPath is the tesseract binary (default: "tesseract" on PATH).
	TesseractPath string

	// URL is the OpenAI-compatible base URL (…/v1, or KServe's
	// …/openai/v1); required for vllm.
	URL string
	// Model is the served model name ("" = the profile's default model).
	Model string
	// APIKey is sent as "Authorization: Bearer <key>" when set.
	APIKey string
	// Profile names the model family adapter (ProfileDeepSeekOCR when "").
	Profile string
	// Mode is the default resolution mode ("" = the profile's default).
	Mode string
	// MaxTokens caps the answer length per page (0 = the profile's default).
	MaxTokens int
	// MaxInflight caps concurrent calls to the model server from this
	// process (0 = unlimited). See NewLimit.
	MaxInflight int
	// InflightPolicy is InflightAdaptive (the limit follows the server's
	// queue up to MaxInflight; the default) or InflightFixed (MaxInflight
	// is the limit).
	InflightPolicy string
	// MetricsURL is where the server's queue gauges are read for the
	// adaptive limit: "" = /metrics beside URL, MetricsOff = none (the
	// limit then follows latency). See MetricsURL.
	MetricsURL string
	// Log receives what the in-flight limit follows (nil: nothing).
	Log *slog.Logger
	// Fallback names the engine used for a page when the primary is
	// unavailable past its retries (tesseract or fake; "" = none).
	Fallback string
	// LastAttempt reports whether the current delivery is the last one the
	// transport makes (stage.LastAttempt); it decides when Fallback takes
	// over. Nil means "unknown": the fallback then answers on the first
	// transient failure, because no retry will follow that it could wait for.
	LastAttempt func(ctx context.Context) bool
	// HTTPClient overrides the HTTP client of the vllm engine (tests).
	HTTPClient *http.Client
}

// Target returns the page size the named engine reads best with its
// default settings; TargetFor takes the profile and mode into account.
func Target(name string) render.Target {
	return TargetFor(Config{Name: name})
}

// TargetFor returns the page size convert renders for cfg: tesseract wants
// ~144 DPI (1024 px costs it about 2 points of character error rate); a
// vision model gets the long side its profile and mode use, so pages are
// never rendered larger than the model reads them; the fake engine (and any
// unknown name) a 1024 px long side.
func TargetFor(cfg Config) render.Target {
	switch strings.ToLower(cfg.Name) {
	case NameTesseract, "":
		return render.Target{DPI: 144}
	case NameVLLM:
		prof, err := LookupProfile(cfg.Profile)
		if err != nil {
			prof, _ = LookupProfile("")
		}
		return render.Target{LongSide: prof.sizing(cfg.Mode).renderLongSide()}
	default:
		return render.Target{LongSide: 1024}
	}
}

// Engine recognizes one page. Implementations must be safe for concurrent
// use and must classify errors with package failure: a page the engine
// gives up on is a permanent error (a *GiveUpError, whose message starts
// with its reason); anything a retry may fix is transient.
type Engine interface {
	Recognize(ctx context.Context, p Page) (Result, error)
	// Name is recorded per page as engine_used.
	Name() string
}

// New builds the engine cfg names. For vllm it composes the chain
// Fallback(NewLimit(VLLM), fallback engine): the in-flight limit (adaptive
// up to MaxInflight, or fixed at it) decides how many calls reach the model
// server, and the fallback engine answers pages the server cannot serve
// before their retries run out.
func New(cfg Config) (Engine, error) {
	switch strings.ToLower(cfg.Name) {
	case NameTesseract, "":
		return NewTesseract(cfg.TesseractPath, cfg.TesseractLangs), nil
	case NameFake:
		return &Fake{}, nil
	case NameVLLM:
		v, err := NewVLLM(cfg)
		if err != nil {
			return nil, err
		}
		var e Engine = v
		if cfg.MaxInflight > 0 {
			lc := LimitConfig{Max: cfg.MaxInflight, Adaptive: !strings.EqualFold(cfg.InflightPolicy, InflightFixed), Log: cfg.Log}
			if u := MetricsURL(cfg.URL, cfg.MetricsURL); lc.Adaptive && u != "" {
				lc.Gauges = VLLMGauges(u, cfg.APIKey, cfg.HTTPClient)
			}
			e = NewLimit(lc)(e)
		}
		if cfg.Fallback == "" {
			return e, nil
		}
		if strings.EqualFold(cfg.Fallback, NameVLLM) {
			return nil, fmt.Errorf("engine: fallback %q must not be a model server too (use tesseract or fake)", cfg.Fallback)
		}
		fb, err := New(Config{Name: cfg.Fallback, TesseractLangs: cfg.TesseractLangs, TesseractPath: cfg.TesseractPath})
		if err != nil {
			return nil, fmt.Errorf("engine: fallback: %w", err)
		}
		return Fallback(fb, cfg.LastAttempt)(e), nil
	default:
		return nil, fmt.Errorf("engine %q is unknown (known: %s, %s, %s)", cfg.Name, NameTesseract, NameVLLM, NameFake)
	}
}

// Describe returns the model and default mode a vllm cfg runs, as results
// are keyed and described by them: the configured values, else the
// profile's defaults. Other engines have neither ("", "").
func Describe(cfg Config) (model, mode string) {
	if !strings.EqualFold(cfg.Name, NameVLLM) {
		return "", ""
	}
	prof, err := LookupProfile(cfg.Profile)
	if err != nil {
		return cfg.Model, cfg.Mode
	}
	model = cfg.Model
	if model == "" {
		model = prof.DefaultModel
	}
	return model, prof.mode(cfg.Mode, "")
}
