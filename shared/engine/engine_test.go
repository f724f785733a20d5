package engine_test

import (
	"context"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/render"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func TestParagraphs(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"only_whitespace_and_form_feeds", " \n\f\n\t\n", ""},
		{"one_line", "Hello world", "Hello world"},
		{"lines_of_a_paragraph_join_with_spaces", "Hello\nworld\nagain", "Hello world again"},
		{"blank_line_separates_paragraphs", "One\ntwo\n\nThree", "One two\n\nThree"},
		{"many_blank_lines_collapse_to_one", "One\n\n\n\n  \nTwo", "One\n\nTwo"},
		{"lines_are_trimmed", "  indented  \n\ttabbed\t", "indented tabbed"},
		{"form_feed_is_dropped_as_a_line_break", "Page one\fPage two", "Page one Page two"},
		{"form_feed_after_blank_line_separates_pages", "Page one\n\n\fPage two", "Page one\n\nPage two"},
		{"tesseract_trailing_form_feed_dropped", "Title\n\nBody line\n\f", "Title\n\nBody line"},
		{"crlf_line_endings", "One\r\ntwo\r\n\r\nThree\r\n", "One two\n\nThree"},
		{"unicode_kept", "Grüße\naus Köln", "Grüße aus Köln"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, engine.Paragraphs(tc.in), "Paragraphs(%q)", tc.in)
		})
	}
}

func TestFake_is_deterministic(t *testing.T) {
	ctx := context.Background()
	f := &engine.Fake{}
	recognize := func(img []byte, n int) engine.Result {
		t.Helper()
		r, err := f.Recognize(ctx, engine.Page{JobID: "j", Number: n, Image: img})
		require.NoError(t, err)
		return r
	}
	a1, a2 := recognize([]byte("page A"), 1), recognize([]byte("page A"), 2)
	b := recognize([]byte("page B"), 1)
	for _, tc := range []struct {
		name      string
		x, y      string
		wantEqual bool
	}{
		{"same_bytes_same_text", a1.Markdown, a2.Markdown, true},
		{"different_bytes_different_text", a1.Markdown, b.Markdown, false},
		{"text_is_FakeText", a1.Markdown, engine.FakeText([]byte("page A")), true},
		{"raw_names_the_page", a1.Raw, a2.Raw, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantEqual {
				assert.Equal(t, tc.x, tc.y)
			} else {
				assert.NotEqual(t, tc.x, tc.y)
			}
		})
	}
	assert.Equal(t, engine.NameFake, f.Name(), "Name")
}

func TestFake_Fail_and_context(t *testing.T) {
	injected := failure.Transient("gpu cold")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		fake    *engine.Fake
		ctx     context.Context
		page    int
		wantErr error
	}{
		{
			name:    "fail_hook_error_is_returned",
			fake:    &engine.Fake{Fail: func(p engine.Page) error { return injected }},
			ctx:     context.Background(),
			page:    1,
			wantErr: failure.ErrTransient,
		},
		{
			name: "fail_hook_sees_the_page",
			fake: &engine.Fake{Fail: func(p engine.Page) error {
				if p.Number == 3 {
					return failure.Permanent("page 3 poisoned")
				}
				return nil
			}},
			ctx:     context.Background(),
			page:    3,
			wantErr: failure.ErrPermanent,
		},
		{
			name: "fail_hook_returning_nil_passes",
			fake: &engine.Fake{Fail: func(p engine.Page) error {
				if p.Number == 3 {
					return failure.Permanent("page 3 poisoned")
				}
				return nil
			}},
			ctx:  context.Background(),
			page: 2,
		},
		{
			name:    "cancelled_context",
			fake:    &engine.Fake{},
			ctx:     cancelled,
			page:    1,
			wantErr: context.Canceled,
		},
		{
			name:    "latency_interrupted_by_cancellation",
			fake:    &engine.Fake{Latency: time.Hour},
			ctx:     cancelled,
			page:    1,
			wantErr: context.Canceled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.fake.Recognize(tc.ctx, engine.Page{Number: tc.page, Image: []byte("img")})
			if tc.wantErr == nil {
				require.NoError(t, err, "Recognize")
				assert.Equal(t, engine.FakeText([]byte("img")), r.Markdown, "Recognize, want the fake text")
				return
			}
			require.ErrorIs(t, err, tc.wantErr, "Recognize")
			assert.Equal(t, engine.Result{}, r, "Recognize returned a result with its error")
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      engine.Config
		wantName string
		wantErr  bool
	}{
		{name: "default_is_tesseract", cfg: engine.Config{}, wantName: engine.NameTesseract},
		{name: "tesseract_case_insensitive", cfg: engine.Config{Name: "Tesseract"}, wantName: engine.NameTesseract},
		{name: "fake", cfg: engine.Config{Name: "fake"}, wantName: engine.NameFake},
		{name: "unknown", cfg: engine.Config{Name: "gpt"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := engine.New(tc.cfg)
			if tc.wantErr {
				if err == nil {
					assert.Failf(t, "New succeeded", "New(%+v) = %s, want an error", tc.cfg, e.Name())
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantName, e.Name(), "Name")
		})
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		engine string
		want   render.Target
	}{
		{engine.NameTesseract, render.Target{DPI: 144}},
		{engine.NameFake, render.Target{LongSide: 1024}},
		{"deepseek-ocr", render.Target{LongSide: 1024}},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			assert.Equal(t, tc.want, engine.Target(tc.engine), "Target(%q)", tc.engine)
		})
	}
}

// needTesseract skips unless the tesseract binary is installed.
func needTesseract(t *testing.T) *engine.Tesseract {
	t.Helper()
	te := engine.NewTesseract("", "")
	if err := te.Check(context.Background()); err != nil {
		t.Skipf("tesseract not installed (`make test` installs it; or: apt-get install tesseract-ocr): %v", err)
	}
	return te
}

// words splits text into lower-case words, ignoring punctuation.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
}

// recall is the share of the words of want (with multiplicity) that got
// contains.
func recall(want, got string) float64 {
	have := map[string]int{}
	for _, w := range words(got) {
		have[w]++
	}
	ws := words(want)
	hit := 0
	for _, w := range ws {
		if have[w] > 0 {
			have[w]--
			hit++
		}
	}
	return float64(hit) / float64(len(ws))
}

func TestRecall(t *testing.T) {
	for _, tc := range []struct {
		name      string
		want, got string
		recall    float64
	}{
		{"identical", "The cat sat.", "the cat sat", 1},
		{"half", "one two three four", "one two", 0.5},
		{"multiplicity_counts", "a a a b", "a b", 0.5},
		{"none", "alpha beta", "gamma", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.recall, recall(tc.want, tc.got), "recall")
		})
	}
}

func TestTesseract_Recognize(t *testing.T) {
	te := needTesseract(t)
	assert.Equal(t, engine.NameTesseract, te.Name(), "Name")
	png, err := os.ReadFile("../../testdata/page.png")
	require.NoError(t, err)
	want, err := os.ReadFile("../../testdata/page.png.txt")
	require.NoError(t, err)
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		image   []byte
		wantErr error
	}{
		{name: "reads_page_png", ctx: context.Background(), image: png},
		{name: "garbage_bytes_are_permanent", ctx: context.Background(), image: garbage(4096), wantErr: failure.ErrPermanent},
		{name: "empty_image_is_permanent", ctx: context.Background(), image: nil, wantErr: failure.ErrPermanent},
		{name: "expired_context_is_transient", ctx: expired, image: png, wantErr: failure.ErrTransient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := te.Recognize(tc.ctx, engine.Page{JobID: "j", Number: 1, Image: tc.image})
			if tc.wantErr != nil {
				require.Error(t, err, "Recognize err = nil, want %v", tc.wantErr)
				assert.Equal(t, failure.Classify(tc.wantErr), failure.Classify(err), "Classify(%v)", err)
				return
			}
			require.NoError(t, err, "Recognize")
			got := recall(string(want), r.Markdown)
			assert.GreaterOrEqual(t, got, 0.90, "word recall = %.2f, want ≥ 0.90\ngot:\n%s", got, r.Markdown)
			t.Logf("word recall of page.png: %.3f", got)
			md, blocks := engine.ParseTesseract(r.Raw)
			assert.Equal(t, md, r.Markdown, "Markdown is not what the raw output (txt and tsv) reads as")
			assert.Equal(t, blocks, r.Blocks, "Blocks are not what the raw output (txt and tsv) reads as")
			assert.Len(t, r.Blocks, 3, "one block per paragraph of page.png")
		})
	}
}

func TestTesseract_missing_binary(t *testing.T) {
	te := engine.NewTesseract("/nonexistent/tesseract", "")
	assert.Error(t, te.Check(context.Background()), "Check of a missing binary succeeded")
	_, err := te.Recognize(context.Background(), engine.Page{Number: 1, Image: []byte("x")})
	require.Error(t, err, "Recognize with a missing binary succeeded")
	assert.False(t, failure.Retryable(err), "missing binary err = %v classified transient; retries cannot install it", err)
}

func garbage(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(7)).Read(b)
	return b
}

// Compile-time guards: both engines satisfy Engine.
var (
	_ engine.Engine = (*engine.Fake)(nil)
	_ engine.Engine = (*engine.Tesseract)(nil)
)
