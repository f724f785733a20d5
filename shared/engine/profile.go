package engine

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// Profile names (OCR_PROFILE).
const (
	ProfileDeepSeekOCR  = "deepseek-ocr"
	ProfileDeepSeekOCR2 = "deepseek-ocr-2"
	ProfileOlmOCR2      = "olmocr-2"
	ProfileGeneric      = "generic"
)

// Mode names (OCR_MODE and the job's resolution hint). On vLLM the
// DeepSeek processor is fixed server-side (a 1024 px global view plus
// tile-sized crops when the image exceeds one tile), so a mode is the size
// of the image ocrflow sends: tiny and small fit one tile (no crops, the
// fewest vision tokens), base and large are long sides, gundam fits the
// crop grid (docs/engines.md, "Modes").
const (
	ModeTiny   = "tiny"
	ModeSmall  = "small"
	ModeBase   = "base"
	ModeLarge  = "large"
	ModeGundam = "gundam"
)

// Prompts, as the models' authors give them (DeepSeek-OCR's config.py, olmOCR's
// build_no_anchoring_v4_yaml_prompt; docs/engines.md).
const (
	// PromptDeepSeekDocument is the DeepSeek-OCR document prompt; the chat
	// API adds the <image> placeholder itself.
	PromptDeepSeekDocument = "<|grounding|>Convert the document to markdown."
	// PromptOlmOCR is olmOCR's build_no_anchoring_v4_yaml_prompt.
	PromptOlmOCR = "Attached is one page of a document that you must process. Just return the plain text representation of this document as if you were reading it naturally. Convert equations to LateX and tables to HTML.\n" +
		"If there are any figures or charts, label them with the following markdown syntax ![Alt text describing the contents of the figure](page_startx_starty_width_height.png)\n" +
		"Return your output as markdown, with a front matter section on top specifying values for the primary_language, is_rotation_valid, rotation_correction, is_table, and is_diagram parameters."
	// PromptGeneric asks any vision-language model for plain markdown.
	PromptGeneric = "Convert this page to markdown. Reproduce all text in reading order with headings, lists and paragraphs; write tables as HTML and equations as LaTeX. Answer with the markdown only."
)

// deepSeekWhitelist are the token ids of <td> and </td>, which the n-gram
// guard must allow to repeat (tables).
var deepSeekWhitelist = []int{128821, 128822}

// rung is one setting of the retry ladder a looping or empty page climbs.
type rung struct {
	mode        string
	temperature float32
	// ngram, window configure DeepSeek's NGramPerReqLogitsProcessor
	// (vllm_xargs); 0 for profiles that do not use it.
	ngram, window     int
	repetitionPenalty float32
}

// String describes the rung for messages.
func (r rung) String() string {
	s := "mode " + r.mode + " temperature " + strconv.FormatFloat(float64(r.temperature), 'g', -1, 32)
	if r.ngram > 0 {
		s += fmt.Sprintf(" ngram %d/%d", r.ngram, r.window)
	}
	if r.repetitionPenalty > 0 {
		s += " repetition_penalty " + strconv.FormatFloat(float64(r.repetitionPenalty), 'g', -1, 32)
	}
	return s
}

// verdict is what a profile makes of one answer.
type verdict int

const (
	verdictOK verdict = iota
	verdictLoop
	verdictEmpty
	verdictRotate
)

// answer is a profile's reading of one model answer.
type answer struct {
	verdict verdict
	result  Result
	// rotate is the counter-clockwise rotation (degrees) the model asks
	// for before reading the page again (verdictRotate).
	rotate int
	why    string
}

// Profile adapts the engine to one model family: prompt, message order,
// sampling extras, image sizing, retry ladder and post-processing. Profiles
// are values built into ocrflow; LookupProfile returns them by name.
type Profile struct {
	// Name is the OCR_PROFILE value.
	Name string
	// DefaultModel is the served model name when OCR_MODEL is empty.
	DefaultModel string
	// DefaultMode is the mode when neither OCR_MODE nor a hint picks one.
	DefaultMode string
	// MaxTokens is the default answer cap per page (OCR_MAX_TOKENS).
	MaxTokens int

	modes map[string]sizing
	// lower maps a mode to the cheaper one the last ladder rung uses.
	lower map[string]string
	// ladder returns the rungs for a mode; the first is the normal request.
	ladder func(mode string) []rung
	// imageFirst puts the image part before the text part.
	imageFirst bool
	prompt     string
	// vllmExtras sends skip_special_tokens=false and vllm_xargs.
	vllmExtras bool
	// interpret reads an answer for page (number, width, height).
	interpret func(content string, finish openai.FinishReason, page, width, height int) answer
}

// Modes lists the profile's mode names, sorted.
func (p *Profile) Modes() []string {
	out := make([]string, 0, len(p.modes))
	for m := range p.modes {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// mode resolves a hint and a configured default to a known mode.
func (p *Profile) mode(hint, def string) string {
	for _, m := range []string{hint, def} {
		if _, ok := p.modes[strings.ToLower(m)]; ok {
			return strings.ToLower(m)
		}
	}
	return p.DefaultMode
}

// sizing returns the sizing of mode (the default mode's when unknown).
func (p *Profile) sizing(mode string) sizing {
	if s, ok := p.modes[strings.ToLower(mode)]; ok {
		return s
	}
	return p.modes[p.DefaultMode]
}

// CheckMode reports whether mode is "" or one of the profile's modes.
func (p *Profile) CheckMode(mode string) error {
	if mode == "" {
		return nil
	}
	if _, ok := p.modes[strings.ToLower(mode)]; !ok {
		return fmt.Errorf("mode %q is not one of %s for profile %s", mode, strings.Join(p.Modes(), ", "), p.Name)
	}
	return nil
}

// Profiles lists the names of the built-in profiles.
func Profiles() []string {
	return []string{ProfileDeepSeekOCR, ProfileDeepSeekOCR2, ProfileOlmOCR2, ProfileGeneric}
}

// LookupProfile returns the named profile ("" = deepseek-ocr).
func LookupProfile(name string) (*Profile, error) {
	switch strings.ToLower(name) {
	case ProfileDeepSeekOCR, "":
		return deepSeekProfile(ProfileDeepSeekOCR, "deepseek-ai/DeepSeek-OCR", 640, 1600), nil
	case ProfileDeepSeekOCR2:
		return deepSeekProfile(ProfileDeepSeekOCR2, "deepseek-ai/DeepSeek-OCR-2", 768, 1920), nil
	case ProfileOlmOCR2:
		return olmOCRProfile(), nil
	case ProfileGeneric:
		return genericProfile(), nil
	}
	return nil, fmt.Errorf("profile %q is unknown (known: %s)", name, strings.Join(Profiles(), ", "))
}

// deepSeekProfile is DeepSeek-OCR (tile 640) or DeepSeek-OCR-2 (tile 768):
// the same request format, prompt and n-gram logits processor.
func deepSeekProfile(name, model string, tile, gundamRender int) *Profile {
	return &Profile{
		Name: name, DefaultModel: model, DefaultMode: ModeGundam,
		// The recipe serves with --max-model-len 8192; the largest crop
		// grid costs under 1 000 vision tokens, so 4 096 answer tokens fit
		// beside it (a dense page needs 2–3 k).
		MaxTokens: 4096,
		modes: map[string]sizing{
			ModeTiny:   {longSide: 512},
			ModeSmall:  {longSide: tile},
			ModeBase:   {longSide: 1024},
			ModeLarge:  {longSide: 1280},
			ModeGundam: {tile: tile, minCrops: 2, maxCrops: 6, render: gundamRender},
		},
		lower: map[string]string{
			ModeGundam: ModeSmall, ModeLarge: ModeBase, ModeBase: ModeSmall, ModeSmall: ModeTiny, ModeTiny: ModeTiny,
		},
		imageFirst: true, prompt: PromptDeepSeekDocument, vllmExtras: true,
		ladder: func(mode string) []rung {
			// The recipe's guard, then the original repository's stricter
			// one with a mild repetition penalty, then a cheaper mode:
			// a different input is what most reliably breaks a loop.
			rs := []rung{
				{mode: mode, ngram: 30, window: 90},
				{mode: mode, ngram: 20, window: 50, repetitionPenalty: 1.05},
			}
			return rs
		},
		interpret: interpretDeepSeek,
	}
}

func interpretDeepSeek(content string, finish openai.FinishReason, page, width, height int) answer {
	if finish == openai.FinishReasonLength {
		return answer{verdict: verdictLoop, why: "finish_reason length"}
	}
	g := ParseGrounding(content, page, width, height)
	return judge(Result{Markdown: g.Markdown, Raw: content, Blocks: g.Blocks})
}

// judge applies the checks every profile shares to a parsed answer: a
// repeating tail is a loop, an answer without text is empty, anything
// else is the page's result.
func judge(res Result) answer {
	if looping(res.Markdown) {
		return answer{verdict: verdictLoop, why: "repeating tail"}
	}
	if strings.TrimSpace(res.Markdown) == "" {
		return answer{verdict: verdictEmpty, result: res, why: "empty answer"}
	}
	return answer{result: res}
}

// olmOCRProfile is allenai/olmOCR-2: text then image, a PNG-sized page of
// 1288 px on the long side, YAML front matter in the answer.
func olmOCRProfile() *Profile {
	return &Profile{
		Name: ProfileOlmOCR2, DefaultModel: "allenai/olmOCR-2-7B-1025-FP8", DefaultMode: ModeBase,
		MaxTokens: 8000,
		modes:     map[string]sizing{ModeBase: {longSide: 1288}},
		lower:     map[string]string{ModeBase: ModeBase},
		ladder: func(mode string) []rung {
			// olmocr/pipeline.py raises the temperature on each retry.
			return []rung{{mode: mode, temperature: 0.1}, {mode: mode, temperature: 0.2}, {mode: mode, temperature: 0.5}}
		},
		prompt:    PromptOlmOCR,
		interpret: interpretOlmOCR,
	}
}

func interpretOlmOCR(content string, finish openai.FinishReason, _, _, _ int) answer {
	if finish == openai.FinishReasonLength {
		return answer{verdict: verdictLoop, why: "finish_reason length"}
	}
	fm, body, ok := parseFrontMatter(content)
	if !ok {
		// An answer without front matter is still text; keep it.
		body = content
	}
	md := strings.TrimSpace(cleanText(body))
	res := Result{Markdown: md, Raw: content, Meta: fm.meta}
	if ok && !fm.rotationValid && fm.rotationCorrection != 0 {
		return answer{verdict: verdictRotate, result: res, rotate: fm.rotationCorrection, why: fmt.Sprintf("rotation_correction %d", fm.rotationCorrection)}
	}
	return judge(res)
}

// genericProfile drives any OpenAI-compatible vision model with a plain
// markdown prompt and no server-specific extras.
func genericProfile() *Profile {
	return &Profile{
		Name: ProfileGeneric, DefaultModel: "", DefaultMode: ModeBase,
		MaxTokens: 4096,
		modes: map[string]sizing{
			ModeTiny: {longSide: 512}, ModeSmall: {longSide: 640}, ModeBase: {longSide: 1024}, ModeLarge: {longSide: 1280},
		},
		lower: map[string]string{ModeLarge: ModeBase, ModeBase: ModeSmall, ModeSmall: ModeTiny, ModeTiny: ModeTiny},
		ladder: func(mode string) []rung {
			return []rung{{mode: mode}, {mode: mode, temperature: 0.3}}
		},
		imageFirst: true, prompt: PromptGeneric,
		interpret: func(content string, finish openai.FinishReason, _, _, _ int) answer {
			if finish == openai.FinishReasonLength {
				return answer{verdict: verdictLoop, why: "finish_reason length"}
			}
			return judge(Result{Markdown: strings.TrimSpace(cleanText(unfence(content))), Raw: content})
		},
	}
}

// rungs returns the full ladder for mode: the profile's rungs, then the
// last rung again in the next lower mode when there is one.
func (p *Profile) rungs(mode string) []rung {
	rs := p.ladder(mode)
	if low := p.lower[mode]; low != "" && low != mode {
		last := rs[len(rs)-1]
		last.mode = low
		rs = append(rs, last)
	}
	return rs
}

// unfence removes a ```markdown … ``` fence wrapping the whole answer.
func unfence(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "```") || !strings.HasSuffix(t, "```") || len(t) < 6 {
		return s
	}
	nl := strings.IndexByte(t, '\n')
	if nl < 0 {
		return s
	}
	if lang := strings.TrimSpace(t[3:nl]); lang != "" && !slices.Contains([]string{"markdown", "md"}, lang) {
		return s
	}
	return t[nl+1 : len(t)-3]
}

// request builds the chat completion request for one rung.
func (p *Profile) request(model, dataURL string, r rung, maxTokens int) wireRequest {
	img := openai.ChatMessagePart{Type: openai.ChatMessagePartTypeImageURL, ImageURL: &openai.ChatMessageImageURL{URL: dataURL}}
	txt := openai.ChatMessagePart{Type: openai.ChatMessagePartTypeText, Text: p.prompt}
	parts := []openai.ChatMessagePart{txt, img}
	if p.imageFirst {
		parts = []openai.ChatMessagePart{img, txt}
	}
	req := wireRequest{
		ChatCompletionRequest: openai.ChatCompletionRequest{
			Model:    model,
			Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, MultiContent: parts}},
		},
		MaxTokens:         maxTokens,
		Temperature:       r.temperature,
		RepetitionPenalty: r.repetitionPenalty,
	}
	if p.vllmExtras {
		f := false
		req.SkipSpecialTokens = &f
		req.VLLMXArgs = map[string]any{"ngram_size": r.ngram, "window_size": r.window, "whitelist_token_ids": deepSeekWhitelist}
	}
	return req
}

// wireRequest is the JSON body on the wire. go-openai's request type
// cannot express what vLLM needs: its Temperature is omitempty, so 0 is
// dropped and vLLM samples at 1.0, it has no way to send
// skip_special_tokens or vllm_xargs, and it deprecates max_tokens (OpenAI's
// o1 models want max_completion_tokens), which vLLM documents. The outer
// fields shadow the embedded ones in encoding/json (the shallower field
// wins).
type wireRequest struct {
	openai.ChatCompletionRequest
	// MaxTokens caps the answer (vLLM's max_tokens), so a looping page
	// stops.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Temperature is always sent, 0 included.
	Temperature float32 `json:"temperature"`
	// SkipSpecialTokens=false keeps DeepSeek's end-of-sentence token in
	// the text, which tells a finished page from a cut one.
	SkipSpecialTokens *bool `json:"skip_special_tokens,omitempty"`
	// VLLMXArgs configures the per-request n-gram logits processor.
	VLLMXArgs map[string]any `json:"vllm_xargs,omitempty"`
	// RepetitionPenalty is vLLM's sampling parameter (1 = off).
	RepetitionPenalty float32 `json:"repetition_penalty,omitempty"`
}
