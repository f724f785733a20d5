package vllmtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // decode request images
	_ "image/png"
	"math"
	"sort"
	"strings"
)

// Profiles the fake server checks requests against. Each states the
// contract of one model family as vLLM serves it (docs/engines.md), written
// down independently of the engine so that a test against the fake checks
// the engine rather than restating it.
const (
	ProfileDeepSeekOCR  = "deepseek-ocr"
	ProfileDeepSeekOCR2 = "deepseek-ocr-2"
	ProfileOlmOCR2      = "olmocr-2"
	ProfileGeneric      = "generic"
)

// Prompts the contracts require verbatim.
const (
	deepSeekPrompt = "<|grounding|>Convert the document to markdown."
	olmOCRPrompt   = "Attached is one page of a document that you must process. Just return the plain text representation of this document as if you were reading it naturally. Convert equations to LateX and tables to HTML.\n" +
		"If there are any figures or charts, label them with the following markdown syntax ![Alt text describing the contents of the figure](page_startx_starty_width_height.png)\n" +
		"Return your output as markdown, with a front matter section on top specifying values for the primary_language, is_rotation_valid, rotation_correction, is_table, and is_diagram parameters."
)

// chatRequest is every field the fake accepts; any other field is
// rejected (vLLM ignores unknown fields with a warning, which hides typos
// such as "vllm_xarg": the fake is stricter on purpose).
type chatRequest struct {
	Model               string                     `json:"model"`
	Messages            []chatMessage              `json:"messages"`
	MaxTokens           *int                       `json:"max_tokens"`
	MaxCompletionTokens *int                       `json:"max_completion_tokens"`
	Temperature         *float64                   `json:"temperature"`
	TopP                *float64                   `json:"top_p"`
	N                   *int                       `json:"n"`
	Stream              *bool                      `json:"stream"`
	Stop                json.RawMessage            `json:"stop"`
	Seed                *int                       `json:"seed"`
	PresencePenalty     *float64                   `json:"presence_penalty"`
	FrequencyPenalty    *float64                   `json:"frequency_penalty"`
	RepetitionPenalty   *float64                   `json:"repetition_penalty"`
	SkipSpecialTokens   *bool                      `json:"skip_special_tokens"`
	VLLMXArgs           map[string]json.RawMessage `json:"vllm_xargs"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL *struct {
		URL    string `json:"url"`
		Detail string `json:"detail"`
	} `json:"image_url"`
}

// contract is one profile's rules.
type contract struct {
	prompt      string // exact text part; "" = any non-empty text
	imageFirst  bool
	vllmExtras  bool // skip_special_tokens=false and vllm_xargs required
	temperature func(t float64) error
	maxModelLen int
	tile        int // DeepSeek crop tile; 0 = not DeepSeek
	longSide    int // non-DeepSeek: largest long side accepted
}

func contractFor(profile string) (contract, error) {
	switch profile {
	case ProfileDeepSeekOCR, "":
		return contract{prompt: deepSeekPrompt, imageFirst: true, vllmExtras: true, temperature: exactlyZero, maxModelLen: 8192, tile: 640}, nil
	case ProfileDeepSeekOCR2:
		return contract{prompt: deepSeekPrompt, imageFirst: true, vllmExtras: true, temperature: exactlyZero, maxModelLen: 8192, tile: 768}, nil
	case ProfileOlmOCR2:
		return contract{prompt: olmOCRPrompt, temperature: between(0.05, 1), maxModelLen: 16384, longSide: 1288}, nil
	case ProfileGeneric:
		return contract{imageFirst: true, temperature: between(0, 2), maxModelLen: 8192, longSide: 1280}, nil
	}
	return contract{}, fmt.Errorf("vllmtest: unknown profile %q", profile)
}

func exactlyZero(t float64) error {
	if t != 0 {
		return fmt.Errorf("temperature is %v; DeepSeek-OCR must be sampled greedily (temperature 0)", t)
	}
	return nil
}

func between(lo, hi float64) func(float64) error {
	return func(t float64) error {
		if t < lo || t > hi {
			return fmt.Errorf("temperature %v is outside %v..%v", t, lo, hi)
		}
		return nil
	}
}

// modeBox returns the largest image a DeepSeek mode reads.
func (c contract) modeBox(mode string, w, h int) (int, int, error) {
	switch mode {
	case "tiny":
		return 512, 512, nil
	case "small":
		return c.tile, c.tile, nil
	case "base":
		return 1024, 1024, nil
	case "large":
		return 1280, 1280, nil
	case "gundam", "":
		if w <= c.tile && h <= c.tile {
			return c.tile, c.tile, nil
		}
		cols, rows := countTiles(w, h, c.tile)
		return cols * c.tile, rows * c.tile, nil
	}
	return 0, 0, fmt.Errorf("vllmtest: unknown mode %q", mode)
}

// countTiles ports count_tiles of vLLM's DeepSeek-OCR processor
// (vllm/transformers_utils/processors/deepseek_ocr.py; MIN_CROPS 2,
// MAX_CROPS 6).
func countTiles(w, h, tile int) (int, int) {
	type ratio struct{ i, j int }
	var ratios []ratio
	for i := 1; i <= 6; i++ {
		for j := 1; j <= 6; j++ {
			if i*j >= 2 && i*j <= 6 {
				ratios = append(ratios, ratio{i, j})
			}
		}
	}
	sort.SliceStable(ratios, func(a, b int) bool { return ratios[a].i*ratios[a].j < ratios[b].i*ratios[b].j })
	aspect := float64(w) / float64(h)
	best, bestDiff := ratio{1, 1}, math.Inf(1)
	for _, r := range ratios {
		d := math.Abs(aspect - float64(r.i)/float64(r.j))
		if d < bestDiff {
			best, bestDiff = r, d
		} else if d == bestDiff && float64(w*h) > 0.5*float64(tile*tile*r.i*r.j) {
			best = r
		}
	}
	return best.i, best.j
}

// imageTokens estimates the prompt tokens an image costs.
func (c contract) imageTokens(w, h int) int {
	if c.tile == 0 {
		return (w/28 + 1) * (h/28 + 1) // Qwen2.5-VL: one token per 28×28 patch
	}
	q := c.tile / 16 / 4 // queries per tile side
	if c.tile == 768 {
		// DeepSeek-OCR-2 (deepseek_ocr2.py): no newline token per row.
		tokens := 16*16 + 1
		if w > c.tile || h > c.tile {
			cols, rows := countTiles(w, h, c.tile)
			tokens += (rows * q) * (cols * q)
		}
		return tokens
	}
	tokens := 16*17 + 1 // 1024 px global view: 16 rows of 16+1
	if w > c.tile || h > c.tile {
		cols, rows := countTiles(w, h, c.tile)
		tokens += (rows * q) * (cols*q + 1)
	}
	return tokens
}

// checked is what a valid request carries.
type checked struct {
	req        chatRequest
	img        image.Image
	w, h       int
	prompt     int // estimated prompt tokens
	maxTokens  int
	ngram, win int
}

// violation is a request vLLM would refuse, with the status it would use.
type violation struct {
	status int
	msg    string
}

// Error returns the message vLLM would answer with.
func (v *violation) Error() string { return v.msg }

func bad(format string, args ...any) *violation {
	return &violation{status: 400, msg: fmt.Sprintf(format, args...)}
}

// check decodes and validates a chat completion request body.
func (c contract) check(body []byte, model, mode string) (checked, *violation) {
	var out checked
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out.req); err != nil {
		return out, bad("request body: %v", err)
	}
	r := &out.req
	if r.Model != model {
		return out, &violation{status: 404, msg: fmt.Sprintf("The model `%s` does not exist.", r.Model)}
	}
	if r.Stream != nil && *r.Stream {
		return out, bad("stream: the fake serves non-streaming requests only; ocrflow must not stream")
	}
	if r.N != nil && *r.N != 1 {
		return out, bad("n must be 1, got %d", *r.N)
	}
	// Sampling.
	if r.Temperature == nil {
		return out, bad("temperature is missing: vLLM would fall back to its default of 1.0")
	}
	if err := c.temperature(*r.Temperature); err != nil {
		return out, bad("%v", err)
	}
	if r.RepetitionPenalty != nil && (*r.RepetitionPenalty <= 0 || *r.RepetitionPenalty > 2) {
		return out, bad("repetition_penalty %v is out of range", *r.RepetitionPenalty)
	}
	switch {
	case r.MaxTokens != nil && r.MaxCompletionTokens != nil:
		return out, bad("both max_tokens and max_completion_tokens are set")
	case r.MaxTokens != nil:
		out.maxTokens = *r.MaxTokens
	case r.MaxCompletionTokens != nil:
		out.maxTokens = *r.MaxCompletionTokens
	default:
		return out, bad("max_tokens is missing: a looping page would run to the context limit")
	}
	if out.maxTokens < 1 {
		return out, bad("max_tokens must be at least 1, got %d", out.maxTokens)
	}
	if c.vllmExtras {
		if r.SkipSpecialTokens == nil || *r.SkipSpecialTokens {
			return out, bad("skip_special_tokens must be sent as false (DeepSeek's end-of-sentence token tells a finished page)")
		}
		var err error
		if out.ngram, out.win, err = checkXArgs(r.VLLMXArgs); err != nil {
			return out, bad("vllm_xargs: %v", err)
		}
	}
	// Messages.
	if len(r.Messages) != 1 || r.Messages[0].Role != "user" {
		return out, bad("want exactly one user message, got %d message(s)", len(r.Messages))
	}
	var parts []contentPart
	pd := json.NewDecoder(bytes.NewReader(r.Messages[0].Content))
	pd.DisallowUnknownFields()
	if err := pd.Decode(&parts); err != nil {
		return out, bad("message content must be an array of parts: %v", err)
	}
	if len(parts) != 2 {
		return out, bad("want one image part and one text part, got %d parts", len(parts))
	}
	imgPart, txtPart := parts[1], parts[0]
	if c.imageFirst {
		imgPart, txtPart = parts[0], parts[1]
	}
	if imgPart.Type != "image_url" || imgPart.ImageURL == nil || txtPart.Type != "text" || txtPart.ImageURL != nil {
		order := "text, then image_url"
		if c.imageFirst {
			order = "image_url, then text"
		}
		return out, bad("parts must be %s; got %s, %s", order, parts[0].Type, parts[1].Type)
	}
	if c.prompt != "" && txtPart.Text != c.prompt {
		return out, bad("prompt %q is not the model's prompt %q", txtPart.Text, c.prompt)
	}
	if strings.TrimSpace(txtPart.Text) == "" {
		return out, bad("the text part is empty")
	}
	// The image.
	img, w, h, v := decodeDataURL(imgPart.ImageURL.URL)
	if v != nil {
		return out, v
	}
	out.img, out.w, out.h = img, w, h
	if c.tile > 0 {
		bw, bh, err := c.modeBox(mode, w, h)
		if err != nil {
			return out, bad("%v", err)
		}
		if w > bw || h > bh {
			return out, bad("image %d×%d is larger than mode %s reads (%d×%d): it costs bandwidth and buys nothing", w, h, mode, bw, bh)
		}
	} else if max(w, h) > c.longSide {
		return out, bad("image %d×%d is larger than the model reads (long side %d)", w, h, c.longSide)
	}
	out.prompt = c.imageTokens(w, h) + len(txtPart.Text)/3 + 8
	if out.prompt+out.maxTokens > c.maxModelLen {
		return out, bad("'max_tokens' or 'max_completion_tokens' is too large: %d. This model's maximum context length is %d tokens and your request has %d input tokens (%d > %d - %d).",
			out.maxTokens, c.maxModelLen, out.prompt, out.maxTokens, c.maxModelLen, out.prompt)
	}
	return out, nil
}

// checkXArgs validates DeepSeek's NGramPerReqLogitsProcessor arguments as
// its validate_params does, plus the whitelist the recipe sends.
func checkXArgs(x map[string]json.RawMessage) (ngram, window int, err error) {
	if x == nil {
		return 0, 0, fmt.Errorf("missing: without ngram_size the repetition guard is off")
	}
	for k := range x {
		switch k {
		case "ngram_size", "window_size", "whitelist_token_ids":
		default:
			return 0, 0, fmt.Errorf("unknown key %q", k)
		}
	}
	if err := json.Unmarshal(x["ngram_size"], &ngram); err != nil || ngram <= 0 {
		return 0, 0, fmt.Errorf("ngram_size has to be a strictly positive integer, got %s", x["ngram_size"])
	}
	if err := json.Unmarshal(x["window_size"], &window); err != nil || window <= 0 {
		return 0, 0, fmt.Errorf("window_size has to be a strictly positive integer, got %s", x["window_size"])
	}
	if window < ngram {
		return 0, 0, fmt.Errorf("window_size %d is smaller than ngram_size %d", window, ngram)
	}
	var wl []int
	if err := json.Unmarshal(x["whitelist_token_ids"], &wl); err != nil || len(wl) == 0 {
		return 0, 0, fmt.Errorf("whitelist_token_ids must list the <td>/</td> token ids, got %s", x["whitelist_token_ids"])
	}
	return ngram, window, nil
}

// decodeDataURL decodes a base64 image data URL whose MIME type must match
// the image's real format.
func decodeDataURL(u string) (image.Image, int, int, *violation) {
	head, data, ok := strings.Cut(u, ",")
	if !ok || !strings.HasPrefix(head, "data:") || !strings.HasSuffix(head, ";base64") {
		return nil, 0, 0, bad("image_url must be a base64 data URL, got %.40q", u)
	}
	mime := strings.TrimSuffix(strings.TrimPrefix(head, "data:"), ";base64")
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, 0, 0, bad("image data URL: %v", err)
	}
	img, format, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, 0, bad("image does not decode: %v", err)
	}
	if mime != "image/"+format {
		return nil, 0, 0, bad("data URL says %s but the image is %s", mime, format)
	}
	b := img.Bounds()
	return img, b.Dx(), b.Dy(), nil
}
