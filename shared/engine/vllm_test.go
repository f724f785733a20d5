package engine_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/failure"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// jpegPage encodes a marked page (vllmtest.PageImage) as convert would.
func jpegPage(t testing.TB, tag, page, w, h, rotation int) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, vllmtest.PageImage(tag, page, w, h, rotation), &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

// fakeVLLM starts a fake server and returns it with an engine pointed at it.
func fakeVLLM(t *testing.T, fc vllmtest.Config, ec engine.Config) (*vllmtest.Server, *engine.VLLM) {
	t.Helper()
	srv, err := vllmtest.New(fc)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	ec.Name = engine.NameVLLM
	if ec.URL == "" {
		ec.URL = srv.URL()
	}
	if ec.Profile == "" {
		ec.Profile = fc.Profile
	}
	if ec.Model == "" {
		ec.Model = srv.Model()
	}
	e, err := engine.NewVLLM(ec)
	require.NoError(t, err)
	return srv, e
}

func noViolations(t *testing.T, srv *vllmtest.Server) {
	t.Helper()
	v := srv.Violations()
	require.Empty(t, v, "the fake vLLM refused requests:\n%s", strings.Join(v, "\n"))
}

// TestVLLM_wire_bytes_per_profile pins the exact JSON each profile puts on
// the wire — the bytes vLLM receives — against testdata/wire/<profile>.json
// (go test -run Wire -update rewrites them), and checks by name the fields
// go-openai cannot express on its own.
func TestVLLM_wire_bytes_per_profile(t *testing.T) {
	img := jpegPage(t, 1, 1, 48, 64, 0) // small: the golden stays readable
	for _, tc := range []struct {
		profile string
		want    []string // substrings of the raw body
		absent  []string
	}{
		{
			profile: engine.ProfileDeepSeekOCR,
			want: []string{
				`"model":"deepseek-ai/DeepSeek-OCR"`, `"temperature":0,"skip_special_tokens":false`,
				`"vllm_xargs":{"ngram_size":30,"whitelist_token_ids":[128821,128822],"window_size":90}`,
				`"max_tokens":4096`, `"content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,`,
				`{"type":"text","text":"\u003c|grounding|\u003eConvert the document to markdown."}]`,
			},
			absent: []string{"repetition_penalty", "top_p"},
		},
		{
			profile: engine.ProfileDeepSeekOCR2,
			want: []string{
				`"model":"deepseek-ai/DeepSeek-OCR-2"`, `"temperature":0,"skip_special_tokens":false`,
				`"vllm_xargs":{"ngram_size":30,"whitelist_token_ids":[128821,128822],"window_size":90}`,
			},
		},
		{
			profile: engine.ProfileOlmOCR2,
			want: []string{
				`"model":"allenai/olmOCR-2-7B-1025-FP8"`, `"temperature":0.1}`, `"max_tokens":8000`,
				`"content":[{"type":"text","text":"Attached is one page of a document`, `{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,`,
			},
			absent: []string{"skip_special_tokens", "vllm_xargs"},
		},
		{
			profile: engine.ProfileGeneric,
			want:    []string{`"model":"model"`, `"temperature":0}`, `"max_tokens":4096`, `"content":[{"type":"image_url"`},
			absent:  []string{"skip_special_tokens", "vllm_xargs"},
		},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			srv, e := fakeVLLM(t, vllmtest.Config{Profile: tc.profile, Record: true}, engine.Config{})
			_, err := e.Recognize(t.Context(), engine.Page{Number: 1, Image: img})
			require.NoError(t, err)
			noViolations(t, srv)
			bodies := srv.RequestBodies()
			require.Len(t, bodies, 1, "requests")
			got := bodies[0]
			golden := filepath.Join("testdata", "wire", tc.profile+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), string(got), "wire bytes differ from %s", golden)
			for _, s := range tc.want {
				assert.Contains(t, string(got), s, "body lacks %s", s)
			}
			for _, s := range tc.absent {
				assert.NotContains(t, string(got), `"`+s+`"`, "body carries %q, which this profile must not send", s)
			}
		})
	}
}

// TestGoOpenAI_drops_temperature_zero documents why the engine wraps the
// request: go-openai alone omits temperature 0 (vLLM then samples at 1.0).
func TestGoOpenAI_drops_temperature_zero(t *testing.T) {
	b, err := json.Marshal(openai.ChatCompletionRequest{Model: "m", Temperature: 0})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "temperature", "go-openai now sends temperature 0: the wrapper may be simplified")
}

// TestVLLM_reads_a_marked_page_per_profile: each profile's answer is
// cleaned to markdown that holds the page's text and no model markup.
func TestVLLM_reads_a_marked_page_per_profile(t *testing.T) {
	page := jpegPage(t, 3, 7, 566, 800, 0)
	for _, tc := range []struct {
		profile    string
		wantBlocks []string // labels, in order
		wantMeta   string
	}{
		{engine.ProfileDeepSeekOCR, []string{"title", "text", "table", "equation", "image", "image_caption"}, ""},
		{engine.ProfileDeepSeekOCR2, []string{"title", "text", "table", "equation", "image", "image_caption"}, ""},
		{engine.ProfileOlmOCR2, nil, "primary_language"},
		{engine.ProfileGeneric, nil, ""},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			srv, e := fakeVLLM(t, vllmtest.Config{Profile: tc.profile}, engine.Config{})
			r, err := e.Recognize(t.Context(), engine.Page{Number: 7, Image: page, Width: 566, Height: 800})
			require.NoError(t, err)
			noViolations(t, srv)
			assert.Contains(t, r.Markdown, vllmtest.PageText(3, 7), "markdown lacks the page text")
			assert.False(t, engine.HasGroundingTags(r.Markdown), "grounding tags left in the markdown:\n%s", r.Markdown)
			assert.NotContains(t, r.Markdown, "```", "code fence left in the markdown")
			assert.False(t, strings.HasPrefix(r.Markdown, "---"), "front matter left in the markdown:\n%s", r.Markdown)
			assert.NotEmpty(t, r.Raw, "raw answer not kept")
			if tc.wantBlocks != nil {
				assert.NotEqual(t, r.Markdown, r.Raw, "raw answer not kept")
			}
			var labels []string
			for _, b := range r.Blocks {
				labels = append(labels, b.Label)
				assert.Equal(t, b.Text, r.Markdown[b.Start:b.End], "block %s span [%d,%d) is not its text", b.Label, b.Start, b.End)
			}
			assert.Equal(t, strings.Join(tc.wantBlocks, ","), strings.Join(labels, ","), "block labels")
			if tc.wantMeta != "" {
				assert.NotEmpty(t, r.Meta[tc.wantMeta], "meta %v lacks %s", r.Meta, tc.wantMeta)
			}
		})
	}
}

// TestVLLM_failures_are_classified: what a retry may fix is transient,
// what it cannot is permanent with a reason.
func TestVLLM_failures_are_classified(t *testing.T) {
	always := func(f vllmtest.Fault) func(vllmtest.Call) vllmtest.Fault {
		return func(vllmtest.Call) vllmtest.Fault { return f }
	}
	// Nothing listens on port 1 (a closed test server's port could be
	// handed to the next one).
	const downURL = "http://127.0.0.1:1/v1"
	page := jpegPage(t, 1, 1, 600, 800, 0)
	for _, tc := range []struct {
		name       string
		fake       vllmtest.Config
		eng        engine.Config
		image      []byte
		timeout    time.Duration
		wantClass  failure.Type
		wantIs     error
		wantReason string
	}{
		{name: "503_is_transient", fake: vllmtest.Config{Fault: always(vllmtest.FaultUnavailable)}, wantClass: failure.TypeTransient},
		{name: "dropped_connection_is_transient", fake: vllmtest.Config{Fault: always(vllmtest.FaultDrop)}, wantClass: failure.TypeTransient},
		{name: "hang_past_the_deadline_is_transient", fake: vllmtest.Config{Fault: always(vllmtest.FaultTimeout)}, timeout: 100 * time.Millisecond,
			wantClass: failure.TypeTransient, wantIs: context.DeadlineExceeded},
		{name: "429_is_overloaded_and_transient", fake: vllmtest.Config{Fault: always(vllmtest.FaultOverloaded)}, wantClass: failure.TypeTransient, wantIs: engine.ErrOverloaded},
		{name: "server_down_is_transient", eng: engine.Config{URL: downURL}, wantClass: failure.TypeTransient},
		{name: "unknown_model_404_is_transient", eng: engine.Config{Model: "deepseek-ai/typo"}, wantClass: failure.TypeTransient},
		{name: "missing_api_key_401_is_transient", fake: vllmtest.Config{APIKey: "secret"}, wantClass: failure.TypeTransient},
		{name: "request_vllm_refuses_400_is_permanent", eng: engine.Config{Profile: engine.ProfileGeneric, Model: "deepseek-ai/DeepSeek-OCR"},
			wantClass: failure.TypePermanent, wantReason: engine.ReasonRejected},
		{name: "too_many_tokens_400_is_permanent", eng: engine.Config{MaxTokens: 8000},
			wantClass: failure.TypePermanent, wantReason: engine.ReasonRejected},
		{name: "undecodable_image_is_permanent", image: []byte("not an image"), wantClass: failure.TypePermanent, wantReason: engine.ReasonUnreadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, e := fakeVLLM(t, tc.fake, tc.eng)
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			img := page
			if tc.image != nil {
				img = tc.image
			}
			_, err := e.Recognize(ctx, engine.Page{Number: 1, Image: img})
			require.Error(t, err, "Recognize succeeded")
			assert.Equal(t, tc.wantClass, failure.Classify(err), "class of %v", err)
			if tc.wantIs != nil {
				assert.ErrorIs(t, err, tc.wantIs)
			}
			reason, msg, ok := engine.ReasonOf(err)
			assert.Equal(t, tc.wantReason, reason, "reason (%v)", err)
			if ok {
				assert.True(t, strings.HasPrefix(msg, tc.wantReason+": "), "message %q does not start with its reason", msg)
			}
			if tc.wantReason == engine.ReasonRejected {
				assert.NotEmpty(t, srv.Violations(), "the fake saw no violation, yet the engine was refused")
			}
		})
	}
}

// recorder collects the calls the fake saw.
type recorder struct {
	mu    sync.Mutex
	calls []vllmtest.Call
}

func (r *recorder) fault(f func(vllmtest.Call) vllmtest.Fault) func(vllmtest.Call) vllmtest.Fault {
	return func(c vllmtest.Call) vllmtest.Fault {
		r.mu.Lock()
		r.calls = append(r.calls, c)
		r.mu.Unlock()
		if f == nil {
			return vllmtest.FaultNone
		}
		return f(c)
	}
}

func (r *recorder) get() []vllmtest.Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]vllmtest.Call(nil), r.calls...)
}

// TestVLLM_retry_ladder: a looping or empty page is asked again with a
// stricter n-gram guard, then in a lower mode, then given up with its
// reason; a blank page's empty answer is right the first time.
func TestVLLM_retry_ladder(t *testing.T) {
	inked := jpegPage(t, 2, 5, 566, 800, 0)
	var blankBuf bytes.Buffer
	blankImg := image.NewGray(image.Rect(0, 0, 566, 800))
	for i := range blankImg.Pix {
		blankImg.Pix[i] = 255
	}
	require.NoError(t, jpeg.Encode(&blankBuf, blankImg, nil))
	for _, tc := range []struct {
		name       string
		image      []byte
		fault      func(vllmtest.Call) vllmtest.Fault
		wantCalls  int
		wantReason string // "" = success
		// wantSteps are the ladder steps the call reports, failed or not.
		wantSteps []string
		check     func(t *testing.T, calls []vllmtest.Call, r engine.Result)
	}{
		{
			name: "loop_fixed_by_the_stricter_guard", image: inked, wantCalls: 2, wantSteps: []string{engine.StepLoop},
			fault: func(c vllmtest.Call) vllmtest.Fault {
				if c.NGram == 30 {
					return vllmtest.FaultLoop
				}
				return vllmtest.FaultNone
			},
			check: func(t *testing.T, calls []vllmtest.Call, r engine.Result) {
				const msg = "second rung %+v, want ngram 20/50 with repetition_penalty 1.05"
				assert.Equal(t, 20, calls[1].NGram, msg, calls[1])
				assert.Equal(t, 50, calls[1].Window, msg, calls[1])
				assert.Equal(t, 1.05, calls[1].RepetitionPenalty, msg, calls[1])
				assert.Contains(t, r.Markdown, vllmtest.PageText(2, 5), "markdown")
			},
		},
		{
			name: "always_loops_gives_up_with_repetition", image: inked, wantCalls: 3, wantReason: engine.ReasonRepetition,
			wantSteps: []string{engine.StepLoop, engine.StepLoop},
			fault:     func(vllmtest.Call) vllmtest.Fault { return vllmtest.FaultLoop },
			check: func(t *testing.T, calls []vllmtest.Call, _ engine.Result) {
				last := calls[2]
				assert.LessOrEqual(t, max(last.Width, last.Height), 640, "last rung sent %d×%d; want the lower mode (small: 640 px)", last.Width, last.Height)
			},
		},
		{
			name: "empty_once_then_read", image: inked, wantCalls: 2, wantSteps: []string{engine.StepEmpty},
			fault: func(c vllmtest.Call) vllmtest.Fault {
				if c.Attempt == 1 {
					return vllmtest.FaultEmpty
				}
				return vllmtest.FaultNone
			},
		},
		{
			name: "always_empty_on_a_page_with_ink_gives_up", image: inked, wantCalls: 3, wantReason: engine.ReasonEmpty,
			wantSteps: []string{engine.StepEmpty, engine.StepEmpty},
			fault:     func(vllmtest.Call) vllmtest.Fault { return vllmtest.FaultEmpty },
		},
		{
			name: "empty_answer_for_a_blank_page_is_right", image: blankBuf.Bytes(), wantCalls: 1,
			fault: func(vllmtest.Call) vllmtest.Fault { return vllmtest.FaultEmpty },
			check: func(t *testing.T, _ []vllmtest.Call, r engine.Result) {
				assert.Empty(t, r.Markdown, "markdown")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			srv, e := fakeVLLM(t, vllmtest.Config{Fault: rec.fault(tc.fault)}, engine.Config{})
			r, err := e.Recognize(t.Context(), engine.Page{Number: 5, Image: tc.image})
			noViolations(t, srv)
			calls := rec.get()
			assert.Len(t, calls, tc.wantCalls, "requests")
			if tc.wantReason == "" {
				require.NoError(t, err, "Recognize")
			} else {
				reason, msg, _ := engine.ReasonOf(err)
				require.Equal(t, tc.wantReason, reason, "reason of %v", err)
				require.ErrorIs(t, err, failure.ErrPermanent)
				assert.True(t, strings.HasPrefix(msg, tc.wantReason+": page 5: 3 attempts"), "message %q", msg)
				var g *engine.GiveUpError
				if errors.As(err, &g) && tc.wantReason == engine.ReasonRepetition {
					assert.Contains(t, g.Raw, "again and again", "the looping answer is not kept")
				}
			}
			if tc.check != nil && len(calls) >= tc.wantCalls {
				tc.check(t, calls, r)
			}
			assert.Equal(t, tc.wantSteps, r.Steps, "ladder steps reported")
			assert.Positive(t, r.Usage.PromptTokens, "prompt tokens of %d requests", len(calls))
			assert.Positive(t, r.Usage.CompletionTokens, "completion tokens of %d requests", len(calls))
		})
	}
}

// TestVLLM_olmOCR_rotation_correction: olmOCR says the page is sideways;
// the engine turns it as told and asks again.
func TestVLLM_olmOCR_rotation_correction(t *testing.T) {
	var rec recorder
	srv, e := fakeVLLM(t, vllmtest.Config{Profile: vllmtest.ProfileOlmOCR2, Fault: rec.fault(nil)}, engine.Config{})
	// Scanned sideways: turned 90° counter-clockwise, so it needs 270°.
	r, err := e.Recognize(t.Context(), engine.Page{Number: 4, Image: jpegPage(t, 9, 4, 566, 800, 90)})
	require.NoError(t, err)
	noViolations(t, srv)
	calls := rec.get()
	const msg = "calls %+v: want a sideways page, then the same page upright"
	require.Len(t, calls, 2, msg, calls)
	require.Equal(t, 270, calls[0].Correction, msg, calls)
	require.Equal(t, 0, calls[1].Correction, msg, calls)
	assert.Greater(t, calls[1].Height, calls[1].Width, "second request %d×%d is not portrait", calls[1].Width, calls[1].Height)
	assert.Contains(t, r.Markdown, vllmtest.PageText(9, 4), "result %q meta %v", r.Markdown, r.Meta)
	assert.Equal(t, "270", r.Meta["rotation_applied"], "result %q meta %v", r.Markdown, r.Meta)
	assert.Equal(t, []string{engine.StepRotate}, r.Steps, "ladder steps reported")
}

// TestVLLM_image_sizing: pages are sent at the size the mode reads —
// never larger — and unchanged when they already fit.
func TestVLLM_image_sizing(t *testing.T) {
	page := jpegPage(t, 1, 1, 700, 990, 0)
	a4 := jpegPage(t, 1, 1, 1131, 1600, 0)
	bigScan := jpegPage(t, 1, 1, 1400, 1980, 0)
	for _, tc := range []struct {
		name, profile, cfgMode, hint string
		image                        []byte
		wantW, wantH                 int
		wantSame                     bool // the page's own bytes on the wire
	}{
		{name: "gundam_default_page_fits_the_grid", profile: engine.ProfileDeepSeekOCR, image: a4, wantW: 1131, wantH: 1600, wantSame: true},
		{name: "gundam_large_scan_fitted_to_2x3_grid", profile: engine.ProfileDeepSeekOCR, image: bigScan, wantW: 1280, wantH: 1810},
		{name: "hint_tiny", profile: engine.ProfileDeepSeekOCR, hint: "tiny", image: page, wantW: 362, wantH: 512},
		{name: "hint_small", profile: engine.ProfileDeepSeekOCR, hint: "small", image: page, wantW: 453, wantH: 640},
		{name: "hint_base_never_upscales", profile: engine.ProfileDeepSeekOCR, hint: "Base", image: page, wantW: 700, wantH: 990, wantSame: true},
		{name: "configured_large", profile: engine.ProfileDeepSeekOCR, cfgMode: "large", image: a4, wantW: 905, wantH: 1280},
		{name: "unknown_hint_keeps_the_default", profile: engine.ProfileDeepSeekOCR, hint: "ultra", image: page, wantW: 700, wantH: 990, wantSame: true},
		{name: "ocr2_small_is_one_768_tile", profile: engine.ProfileDeepSeekOCR2, hint: "small", image: page, wantW: 543, wantH: 768},
		{name: "olmocr_1288_long_side", profile: engine.ProfileOlmOCR2, image: a4, wantW: 910, wantH: 1288},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			srv, e := fakeVLLM(t, vllmtest.Config{Profile: tc.profile, Fault: rec.fault(nil), Record: true}, engine.Config{Mode: tc.cfgMode})
			_, err := e.Recognize(t.Context(), engine.Page{Number: 1, Image: tc.image, Mode: tc.hint})
			require.NoError(t, err)
			noViolations(t, srv)
			calls := rec.get()
			require.NotEmpty(t, calls, "requests")
			c := calls[0]
			assert.InDelta(t, tc.wantW, c.Width, 1, "sent %d×%d, want %d×%d", c.Width, c.Height, tc.wantW, tc.wantH)
			assert.InDelta(t, tc.wantH, c.Height, 1, "sent %d×%d, want %d×%d", c.Width, c.Height, tc.wantW, tc.wantH)
			bodies := srv.RequestBodies()
			require.NotEmpty(t, bodies, "recorded request bodies")
			same := bytes.Contains(bodies[0], []byte(b64(tc.image)))
			assert.Equal(t, tc.wantSame, same, "page bytes sent unchanged")
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestVLLM_KServe_path_prefix: KServe's Hugging Face runtime serves the
// API under /openai/v1; the base URL carries the prefix.
func TestVLLM_KServe_path_prefix(t *testing.T) {
	srv, e := fakeVLLM(t, vllmtest.Config{PathPrefix: "/openai/v1"}, engine.Config{})
	require.True(t, strings.HasSuffix(srv.URL(), "/openai/v1"), "fake URL %s", srv.URL())
	_, err := e.Recognize(t.Context(), engine.Page{Number: 1, Image: jpegPage(t, 1, 1, 600, 800, 0)})
	assert.NoError(t, err)
}

func TestNewVLLM_rejects_bad_configuration(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  engine.Config
		want string
	}{
		{"no_url", engine.Config{}, "not an http(s) base URL"},
		{"url_without_scheme", engine.Config{URL: "vllm:8000/v1"}, "not an http(s) base URL"},
		{"unknown_profile", engine.Config{URL: "http://vllm/v1", Profile: "gpt"}, `profile "gpt" is unknown`},
		{"unknown_mode", engine.Config{URL: "http://vllm/v1", Mode: "ultra"}, `mode "ultra" is not one of base, gundam, large, small, tiny`},
		{"generic_needs_a_model", engine.Config{URL: "http://vllm/v1", Profile: engine.ProfileGeneric}, "set the served model name"},
		{"fallback_must_not_be_vllm", engine.Config{URL: "http://vllm/v1", Fallback: "vllm"}, "must not be a model server"},
		{"unknown_fallback", engine.Config{URL: "http://vllm/v1", Fallback: "gpt"}, `engine "gpt" is unknown`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Name = engine.NameVLLM
			_, err := engine.New(tc.cfg)
			assert.ErrorContains(t, err, tc.want, "New(%+v)", tc.cfg)
		})
	}
}

func TestDescribe_and_TargetFor(t *testing.T) {
	for _, tc := range []struct {
		name                string
		cfg                 engine.Config
		wantModel, wantMode string
		wantLong            int
		wantDPI             float64
	}{
		{name: "deepseek_defaults", cfg: engine.Config{Name: "vllm"}, wantModel: "deepseek-ai/DeepSeek-OCR", wantMode: "gundam", wantLong: 1600},
		{name: "deepseek_small", cfg: engine.Config{Name: "vllm", Mode: "small"}, wantModel: "deepseek-ai/DeepSeek-OCR", wantMode: "small", wantLong: 640},
		{name: "deepseek2_gundam", cfg: engine.Config{Name: "vllm", Profile: "deepseek-ocr-2"}, wantModel: "deepseek-ai/DeepSeek-OCR-2", wantMode: "gundam", wantLong: 1920},
		{name: "olmocr", cfg: engine.Config{Name: "vllm", Profile: "olmocr-2", Model: "m"}, wantModel: "m", wantMode: "base", wantLong: 1288},
		{name: "tesseract", cfg: engine.Config{Name: "tesseract"}, wantDPI: 144},
		{name: "fake", cfg: engine.Config{Name: "fake"}, wantLong: 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model, mode := engine.Describe(tc.cfg)
			assert.Equal(t, tc.wantModel, model, "Describe: model")
			assert.Equal(t, tc.wantMode, mode, "Describe: mode")
			got := engine.TargetFor(tc.cfg)
			assert.Equal(t, tc.wantLong, got.LongSide, "TargetFor = %+v: long side", got)
			assert.Equal(t, tc.wantDPI, got.DPI, "TargetFor = %+v: DPI", got)
		})
	}
}
