package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// maxAnswerBytes bounds a model server's response body: 8 192 tokens of
// markdown are well under 1 MiB.
const maxAnswerBytes = 8 << 20

// maxRotations bounds how often olmOCR may ask for the page to be turned.
const maxRotations = 2

// VLLM recognizes pages with a vision-language model served behind an
// OpenAI-compatible chat completions endpoint: `vllm serve` (…/v1) or a
// KServe InferenceService (…/openai/v1 with the Hugging Face runtime). One
// Profile adapts it to the model family. It is safe for concurrent use; it
// does not limit concurrency itself (see Limit).
//
// Errors: connection failures, deadlines, 408, 429, 5xx, and 401/403/404
// (a misconfigured or not-yet-deployed endpoint an operator can fix within
// the retry window) are transient; 400/422 and other 4xx are permanent
// (a *GiveUpError with ReasonRejected). A page that loops or comes back
// empty climbs the profile's ladder within one call and then fails with
// ReasonRepetition or ReasonEmpty.
type VLLM struct {
	endpoint  string
	model     string
	apiKey    string
	profile   *Profile
	mode      string
	maxTokens int
	client    *http.Client
}

// NewVLLM returns the engine cfg describes: cfg.URL is required, Profile,
// Model, Mode and MaxTokens default from the profile.
func NewVLLM(cfg Config) (*VLLM, error) {
	prof, err := LookupProfile(cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("vllm: %w", err)
	}
	if err := prof.CheckMode(cfg.Mode); err != nil {
		return nil, fmt.Errorf("vllm: %w", err)
	}
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("vllm: engine URL %q is not an http(s) base URL such as http://vllm:8000/v1", cfg.URL)
	}
	model := cfg.Model
	if model == "" {
		model = prof.DefaultModel
	}
	if model == "" {
		return nil, fmt.Errorf("vllm: profile %s has no default model: set the served model name (OCR_MODEL)", prof.Name)
	}
	maxTokens := cfg.MaxTokens
	if maxTokens <= 0 {
		maxTokens = prof.MaxTokens
	}
	client := cfg.HTTPClient
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Keep a connection per in-flight call: the default of 2 idle
		// connections per host would reconnect on most requests.
		t.MaxIdleConnsPerHost = max(16, cfg.MaxInflight)
		client = &http.Client{Transport: t}
	}
	return &VLLM{
		endpoint: strings.TrimRight(u.String(), "/") + "/chat/completions",
		model:    model, apiKey: cfg.APIKey, profile: prof, mode: prof.mode(cfg.Mode, ""),
		maxTokens: maxTokens, client: client,
	}, nil
}

// Name returns "vllm".
func (v *VLLM) Name() string { return NameVLLM }

// Profile returns the engine's profile.
func (v *VLLM) Profile() *Profile { return v.profile }

// Model returns the served model name requests carry.
func (v *VLLM) Model() string { return v.model }

// Mode returns the default mode.
func (v *VLLM) Mode() string { return v.mode }

// Recognize sends the page to the model, sized for the mode (p.Mode, else
// the configured one), and cleans the answer up for the profile. It may
// make several requests: the retry ladder for loops and empty answers, and
// olmOCR's rotation correction. The caller's deadline bounds all of them.
func (v *VLLM) Recognize(ctx context.Context, p Page) (Result, error) {
	page, err := loadPage(p.Image)
	if err != nil {
		return Result{}, fmt.Errorf("vllm page %d: %w", p.Number, err)
	}
	mode := v.profile.mode(p.Mode, v.mode)
	rungs := v.profile.rungs(mode)
	rotation, rotations := 0, 0
	var last answer
	var lastRaw string
	var tried []string
	// spent is what the call cost so far; it goes with the result and
	// with a failure alike.
	var spent Result
	for i := 0; i < len(rungs); i++ {
		r := rungs[i]
		img, err := page.prepare(v.profile.sizing(r.mode), rotation)
		if err != nil {
			return spent, fmt.Errorf("vllm page %d: %w", p.Number, err)
		}
		content, finish, usage, err := v.complete(ctx, img, r)
		spent.Usage = spent.Usage.Add(usage)
		if err != nil {
			return spent, fmt.Errorf("vllm page %d: %w", p.Number, err)
		}
		// Boxes are relative to the image the model saw, whose aspect is
		// the page's: map them onto the page as convert rendered it.
		w, h := page.w, page.h
		if rotation == 90 || rotation == 270 {
			w, h = h, w
		}
		last = v.profile.interpret(content, finish, p.Number, w, h)
		lastRaw = content
		if last.verdict == verdictRotate {
			if rotations < maxRotations {
				rotations++
				rotation = (rotation + last.rotate) % 360
				spent.Steps = append(spent.Steps, StepRotate)
				i-- // the same rung again, on the turned page
				continue
			}
			// Still "wrong" after turning it twice: take what it read.
			last.verdict = verdictOK
			if last.result.Markdown == "" {
				last.verdict = verdictEmpty
			}
		}
		if rotation != 0 {
			if last.result.Meta == nil {
				last.result.Meta = map[string]string{}
			}
			last.result.Meta["rotation_applied"] = strconv.Itoa(rotation)
		}
		step := StepLoop
		switch last.verdict {
		case verdictOK:
			return spentOn(last.result, spent), nil
		case verdictEmpty:
			blank, err := page.blank()
			if err != nil {
				return spent, fmt.Errorf("vllm page %d: %w", p.Number, err)
			}
			if blank {
				return spentOn(last.result, spent), nil // nothing to read: empty is right
			}
			step = StepEmpty
		}
		tried = append(tried, last.why+" ("+r.String()+")")
		if i+1 < len(rungs) {
			spent.Steps = append(spent.Steps, step)
		}
	}
	reason := ReasonRepetition
	if last.verdict == verdictEmpty {
		reason = ReasonEmpty
	}
	return spent, GiveUp(reason, lastRaw, "page %d: %d attempts: %s", p.Number, len(tried), strings.Join(tried, "; "))
}

// spentOn returns res with the usage and steps of spent.
func spentOn(res, spent Result) Result {
	res.Usage, res.Steps = spent.Usage, spent.Steps
	return res
}

// blank reports whether the page has no visible content.
func (p *pageImage) blank() (bool, error) {
	img, err := p.decoded()
	if err != nil {
		return false, err
	}
	return inkRatio(img) < inkThreshold, nil
}

// complete makes one chat completion request and returns the first
// choice's content and finish reason, and the tokens the answer reports.
func (v *VLLM) complete(ctx context.Context, img prepared, r rung) (string, openai.FinishReason, Usage, error) {
	dataURL := "data:" + img.mime + ";base64," + base64.StdEncoding.EncodeToString(img.data)
	body, err := json.Marshal(v.profile.request(v.model, dataURL, r, v.maxTokens))
	if err != nil {
		return "", "", Usage{}, failure.As(failure.ErrPermanent, fmt.Errorf("encode request: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", "", Usage{}, failure.As(failure.ErrPermanent, fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if v.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+v.apiKey)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		// net/http's *url.Error repeats the method and URL; keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", Usage{}, fmt.Errorf("post %s: %w", v.endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return "", "", Usage{}, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", Usage{}, statusError(resp.StatusCode, resp.Header, b)
	}
	var out openai.ChatCompletionResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return "", "", Usage{}, fmt.Errorf("decode answer: %w", err)
	}
	usage := Usage{PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens}
	if len(out.Choices) == 0 {
		return "", "", usage, failure.Transient("answer has no choices")
	}
	c := out.Choices[0]
	return c.Message.Content, c.FinishReason, usage, nil
}

// statusError classifies a non-200 answer.
func statusError(code int, h http.Header, body []byte) error {
	msg := errorMessage(body)
	switch {
	case code == http.StatusTooManyRequests:
		return &OverloadedError{RetryAfter: retryAfter(h.Get("Retry-After")), Message: msg}
	case code == http.StatusServiceUnavailable:
		return unavailableError{failure.Transient("model server answered %d: %s", code, msg)}
	case code == http.StatusRequestTimeout || code >= 500:
		return failure.Transient("model server answered %d: %s", code, msg)
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound:
		// Wrong key, model name or path (e.g. KServe's /openai prefix):
		// every page fails alike, and an operator's fix (or the fallback
		// engine) within the retry window saves them.
		return failure.Transient("model server answered %d (check OCR_ENGINE_URL, OCR_MODEL, OCR_API_KEY): %s", code, msg)
	default:
		return GiveUp(ReasonRejected, "", "model server refused the request (%d): %s", code, msg)
	}
}

// errorMessage extracts the message of an OpenAI-style error body
// ({"error": {"message": …}}) or vLLM's older flat one ({"message": …}).
func errorMessage(body []byte) string {
	var nested openai.ErrorResponse
	if json.Unmarshal(body, &nested) == nil && nested.Error != nil && nested.Error.Message != "" {
		return truncate(nested.Error.Message, 300)
	}
	var flat struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &flat) == nil && flat.Message != "" {
		return truncate(flat.Message, 300)
	}
	return truncate(strings.TrimSpace(string(body)), 300)
}

func truncate(s string, n int) string {
	return failure.Message(errors.New(s), n)
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
