package vllmtest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/draw"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/render"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func TestMarker_survives_jpeg_scaling_and_rotation(t *testing.T) {
	for _, tc := range []struct {
		name          string
		tag, page     int
		rotation      int
		scaleTo       int // long side after scaling
		wantCorrected int
	}{
		{"upright_full_size", 3, 7, 0, 800, 0},
		{"tiny_mode", 255, 4095, 0, 512, 0},
		{"sideways_ccw", 1, 12, 90, 700, 270},
		{"upside_down", 2, 1, 180, 600, 180},
		{"sideways_cw", 9, 300, 270, 400, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := image.Image(vllmtest.PageImage(tc.tag, tc.page, 566, 800, tc.rotation))
			b := img.Bounds()
			scale := float64(tc.scaleTo) / float64(max(b.Dx(), b.Dy()))
			dst := image.NewRGBA(image.Rect(0, 0, int(float64(b.Dx())*scale), int(float64(b.Dy())*scale)))
			draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
			var buf bytes.Buffer
			require.NoError(t, jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 75}))
			got, _, err := image.Decode(&buf)
			require.NoError(t, err)
			tag, page, corr, ok := vllmtest.ReadMarker(got)
			require.True(t, ok, "ReadMarker found no marker")
			assert.Equal(t, tc.tag, tag, "ReadMarker: tag")
			assert.Equal(t, tc.page, page, "ReadMarker: page")
			assert.Equal(t, tc.wantCorrected, corr, "ReadMarker: correction")
		})
	}
	blank := image.NewGray(image.Rect(0, 0, 500, 700))
	for i := range blank.Pix {
		blank.Pix[i] = 255
	}
	_, _, _, ok := vllmtest.ReadMarker(blank)
	assert.False(t, ok, "a blank page has a marker")
}

// TestDocument_renders_through_MuPDF: the generated PDF is a real PDF
// whose pages keep their markers through convert's renderer.
func TestDocument_renders_through_MuPDF(t *testing.T) {
	pdf, err := vllmtest.Document(5, 3, 566, 800)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "doc.pdf")
	require.NoError(t, os.WriteFile(path, pdf, 0o644))
	doc, err := render.Open(t.Context(), path, render.Limits{})
	require.NoError(t, err)
	defer func() { assert.NoError(t, doc.Close()) }()
	require.Equal(t, 3, doc.Pages(), "pages")
	for n := 1; n <= 3; n++ {
		p, err := doc.Render(t.Context(), n, render.Target{LongSide: 640})
		require.NoError(t, err, "page %d", n)
		img, _, err := image.Decode(bytes.NewReader(p.Data))
		require.NoError(t, err, "page %d", n)
		tag, page, _, ok := vllmtest.ReadMarker(img)
		if assert.True(t, ok, "page %d has no marker", n) {
			assert.Equal(t, [2]int{5, n}, [2]int{tag, page}, "page %d reads as tag/page", n)
		}
	}
}

// request is a valid DeepSeek-OCR request as JSON fields, to be broken
// one field at a time.
func request(t *testing.T) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, vllmtest.PageImage(1, 2, 566, 800, 0), nil))
	return map[string]any{
		"model": "deepseek-ai/DeepSeek-OCR",
		"messages": []any{map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}},
			map[string]any{"type": "text", "text": "<|grounding|>Convert the document to markdown."},
		}}},
		"max_tokens":          4096,
		"temperature":         0,
		"skip_special_tokens": false,
		"vllm_xargs":          map[string]any{"ngram_size": 30, "window_size": 90, "whitelist_token_ids": []int{128821, 128822}},
	}
}

func post(t *testing.T, url string, body any, header map[string]string) (int, string) {
	t.Helper()
	status, out, err := send(t.Context(), url, body, header)
	require.NoError(t, err)
	return status, out
}

// send posts body as a chat completion request; safe to call from any
// goroutine (it reports instead of failing the test).
func send(ctx context.Context, url string, body any, header map[string]string) (int, string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/chat/completions", bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), err
}

// TestContract_refuses_what_vLLM_or_the_recipe_would: each case breaks one
// rule of a valid request.
func TestContract_refuses_what_vLLM_or_the_recipe_would(t *testing.T) {
	srv, err := vllmtest.New(vllmtest.Config{})
	require.NoError(t, err)
	defer srv.Close()
	pngPage := func() string {
		var buf bytes.Buffer
		require.NoError(t, png.Encode(&buf, vllmtest.PageImage(1, 2, 100, 140, 0)))
		return base64.StdEncoding.EncodeToString(buf.Bytes())
	}()
	bigPage := func() string {
		var buf bytes.Buffer
		require.NoError(t, jpeg.Encode(&buf, vllmtest.PageImage(1, 2, 1400, 2000, 0), nil))
		return base64.StdEncoding.EncodeToString(buf.Bytes())
	}()
	parts := func(r map[string]any) []any {
		return r["messages"].([]any)[0].(map[string]any)["content"].([]any)
	}
	setImage := func(r map[string]any, url string) {
		parts(r)[0].(map[string]any)["image_url"] = map[string]any{"url": url}
	}
	for _, tc := range []struct {
		name   string
		mutate func(r map[string]any)
		status int
		want   string
	}{
		{"valid_request", func(map[string]any) {}, 200, `"finish_reason":"stop"`},
		{"wrong_model", func(r map[string]any) { r["model"] = "deepseek-ocr" }, 404, "does not exist"},
		{"temperature_missing", func(r map[string]any) { delete(r, "temperature") }, 400, "temperature is missing"},
		{"temperature_not_zero", func(r map[string]any) { r["temperature"] = 0.2 }, 400, "greedily"},
		{"skip_special_tokens_missing", func(r map[string]any) { delete(r, "skip_special_tokens") }, 400, "skip_special_tokens"},
		{"skip_special_tokens_true", func(r map[string]any) { r["skip_special_tokens"] = true }, 400, "skip_special_tokens"},
		{"vllm_xargs_missing", func(r map[string]any) { delete(r, "vllm_xargs") }, 400, "repetition guard is off"},
		{"ngram_size_not_an_integer", func(r map[string]any) { r["vllm_xargs"].(map[string]any)["ngram_size"] = "30" }, 400, "ngram_size"},
		{"xargs_typo", func(r map[string]any) { r["vllm_xargs"].(map[string]any)["ngram"] = 30 }, 400, "unknown key"},
		{"unknown_top_level_field", func(r map[string]any) { r["vllm_xarg"] = map[string]any{} }, 400, "unknown field"},
		{"max_tokens_missing", func(r map[string]any) { delete(r, "max_tokens") }, 400, "max_tokens is missing"},
		{"max_tokens_beyond_the_context", func(r map[string]any) { r["max_tokens"] = 8000 }, 400, "maximum context length is 8192"},
		{"stream", func(r map[string]any) { r["stream"] = true }, 400, "non-streaming"},
		{"text_before_image", func(r map[string]any) { p := parts(r); p[0], p[1] = p[1], p[0] }, 400, "image_url, then text"},
		{"instruction_style_prompt", func(r map[string]any) {
			parts(r)[1].(map[string]any)["text"] = "Please convert this document to markdown."
		}, 400, "not the model's prompt"},
		{"system_message", func(r map[string]any) {
			r["messages"] = append([]any{map[string]any{"role": "system", "content": "You are OCR."}}, r["messages"].([]any)...)
		}, 400, "exactly one user message"},
		{"image_by_remote_url", func(r map[string]any) { setImage(r, "https://example.com/page.jpg") }, 400, "base64 data URL"},
		{"data_url_lies_about_the_type", func(r map[string]any) { setImage(r, "data:image/jpeg;base64,"+pngPage) }, 400, "says image/jpeg but the image is png"},
		{"image_does_not_decode", func(r map[string]any) { setImage(r, "data:image/png;base64,aGVsbG8=") }, 400, "does not decode"},
		{"image_larger_than_the_mode", func(r map[string]any) { setImage(r, "data:image/jpeg;base64,"+bigPage) }, 400, "larger than mode gundam"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t)
			tc.mutate(r)
			status, body := post(t, srv.URL(), r, nil)
			assert.Equal(t, tc.status, status, "status; body %s", body)
			assert.Contains(t, body, tc.want)
		})
	}
	v := srv.Violations()
	assert.Len(t, v, 19, "violations recorded:\n%s", strings.Join(v, "\n"))
}

func TestServer_api_key_models_and_metrics(t *testing.T) {
	srv, err := vllmtest.New(vllmtest.Config{APIKey: "k1", PathPrefix: "/openai/v1"})
	require.NoError(t, err)
	defer srv.Close()
	status, body := post(t, srv.URL(), request(t), nil)
	require.Equal(t, 401, status, "without key: %s", body)
	require.Contains(t, body, "Unauthorized", "without key")
	status, _ = post(t, srv.URL(), request(t), map[string]string{"Authorization": "Bearer k1"})
	require.Equal(t, 200, status, "with key")
	for _, tc := range []struct{ path, want string }{
		{srv.URL() + "/models", `"id":"deepseek-ai/DeepSeek-OCR"`},
		{strings.TrimSuffix(srv.URL(), "/openai/v1") + "/metrics", "vllm:num_requests_running{model_name=\"deepseek-ai/DeepSeek-OCR\"} 0"},
	} {
		resp, err := http.Get(tc.path)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(b), tc.want, "GET %s", tc.path)
	}
}

// TestServer_capacity: beyond capacity requests queue (vLLM's scheduler)
// or, configured so, are refused with 429.
func TestServer_capacity(t *testing.T) {
	for _, tc := range []struct {
		name        string
		reject      bool
		want        map[int]int
		wantWaiting int
	}{
		{"queue", false, map[int]int{200: 6}, 4},
		{"reject", true, map[int]int{200: 2, 429: 4}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hold := make(chan struct{})
			entered := make(chan struct{}, 10)
			srv, err := vllmtest.New(vllmtest.Config{Capacity: 2, RejectOverCapacity: tc.reject, Latency: 50 * time.Millisecond,
				Fault: func(vllmtest.Call) vllmtest.Fault { entered <- struct{}{}; <-hold; return vllmtest.FaultNone }})
			require.NoError(t, err)
			defer srv.Close()
			var wg sync.WaitGroup
			body := request(t)
			errs := make(chan error, 6)
			for range 6 {
				wg.Go(func() {
					_, _, err := send(t.Context(), srv.URL(), body, nil)
					errs <- err
				})
			}
			for range 6 {
				<-entered // all six are past validation …
			}
			close(hold) // … and now compete for two slots
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			st := srv.Stats()
			require.Equal(t, tc.want, st.Statuses, "statuses")
			require.Equal(t, 2, st.MaxInFlight, "max in flight")
			first, last := srv.FirstLastStart(time.Time{})
			avg := srv.InFlightAverage(first, last.Add(50*time.Millisecond))
			assert.Greater(t, avg, 0.0, "in-flight average %.2f outside (0, 2]", avg)
			assert.LessOrEqual(t, avg, 2.0, "in-flight average %.2f outside (0, 2]", avg)
			assert.Equal(t, tc.wantWaiting, srv.WaitingMax(time.Time{}, time.Now()), "most requests queued")
			wavg := srv.WaitingAverage(first, last)
			assert.GreaterOrEqual(t, wavg, 0.0, "queue average")
			assert.LessOrEqual(t, wavg, float64(tc.wantWaiting), "queue average")
		})
	}
}

func TestMix_is_reproducible_and_near_its_rates(t *testing.T) {
	f := vllmtest.Mix{vllmtest.FaultUnavailable: 0.3, vllmtest.FaultTimeout: 0.1}.Faults(42)
	counts := map[vllmtest.Fault]int{}
	for page := 1; page <= 500; page++ {
		for attempt := 1; attempt <= 4; attempt++ {
			c := vllmtest.Call{Marked: true, Tag: 1, Page: page, Attempt: attempt}
			got := f(c)
			require.Equal(t, got, f(c), "page %d attempt %d: the same call drew another fault", page, attempt)
			counts[got]++
		}
	}
	for fault, want := range map[vllmtest.Fault]float64{vllmtest.FaultUnavailable: 0.3, vllmtest.FaultTimeout: 0.1, vllmtest.FaultNone: 0.6} {
		got := float64(counts[fault]) / 2000
		assert.InDelta(t, want, got, 0.04, "%v rate %.3f, want %.2f ± 0.04", fault, got, want)
	}
}

func TestServer_Close_releases_hung_requests(t *testing.T) {
	held := make(chan struct{})
	srv, err := vllmtest.New(vllmtest.Config{Fault: func(vllmtest.Call) vllmtest.Fault {
		close(held)
		return vllmtest.FaultTimeout
	}})
	require.NoError(t, err)
	b, err := json.Marshal(request(t))
	require.NoError(t, err)
	done := make(chan int)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL()+"/chat/completions", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		status := 0
		if resp, err := http.DefaultClient.Do(req); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		done <- status
	}()
	<-held // the server holds the request
	srv.Close()
	select {
	case status := <-done:
		assert.Contains(t, []int{http.StatusServiceUnavailable, 0}, status, "a held request ended with %d, want 503 or a closed connection (0)", status)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "a hung request outlived Close")
	}
}
