package engine

import (
	"context"
	"image"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCropGrid_matches_vLLMs_count_tiles(t *testing.T) {
	for _, tc := range []struct {
		name       string
		w, h, tile int
		cols, rows int
	}{
		{"a4_portrait", 1131, 1600, 640, 2, 3},
		{"a4_landscape", 1600, 1131, 640, 3, 2},
		{"letter_portrait", 1236, 1600, 640, 2, 3},
		{"square", 1500, 1500, 640, 2, 2},
		{"receipt_strip", 400, 2400, 640, 1, 6},
		{"wide_banner", 3000, 600, 640, 5, 1},
		{"ocr2_tile_a4", 1358, 1920, 768, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, r := cropGrid(tc.w, tc.h, tc.tile, 2, 6)
			assert.Equal(t, [2]int{tc.cols, tc.rows}, [2]int{c, r}, "cropGrid(%d×%d): cols, rows", tc.w, tc.h)
		})
	}
}

func TestSizing_box(t *testing.T) {
	gundam := sizing{tile: 640, minCrops: 2, maxCrops: 6}
	for _, tc := range []struct {
		name         string
		s            sizing
		w, h         int
		wantW, wantH int
	}{
		{"fixed_mode_is_a_square_bound", sizing{longSide: 512}, 1000, 2000, 512, 512},
		{"gundam_small_page_is_one_view", gundam, 600, 640, 640, 640},
		{"gundam_page_gets_its_grid", gundam, 1131, 1600, 1280, 1920},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, h := tc.s.box(tc.w, tc.h)
			assert.Equal(t, [2]int{tc.wantW, tc.wantH}, [2]int{w, h}, "box: width, height")
		})
	}
}

func TestRotate_counter_clockwise_like_PIL(t *testing.T) {
	// 2×1 image: left pixel 10, right pixel 200.
	src := image.NewGray(image.Rect(0, 0, 2, 1))
	src.Pix[0], src.Pix[1] = 10, 200
	for _, tc := range []struct {
		deg  int
		w, h int
		want []uint8 // row-major
	}{
		{90, 1, 2, []uint8{200, 10}}, // right end goes up
		{180, 2, 1, []uint8{200, 10}},
		{270, 1, 2, []uint8{10, 200}},
		{360, 2, 1, []uint8{10, 200}},
	} {
		got := rotate(src, tc.deg)
		g, ok := got.(*image.Gray)
		if !assert.True(t, ok, "rotate %d = %T, want *image.Gray", tc.deg, got) {
			continue
		}
		assert.Equal(t, [2]int{tc.w, tc.h}, [2]int{g.Bounds().Dx(), g.Bounds().Dy()}, "rotate %d: width, height", tc.deg)
		assert.Equal(t, tc.want, g.Pix, "rotate %d: pixels (row-major)", tc.deg)
	}
}

func TestParseFrontMatter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		ok        bool
		valid     bool
		corr      int
		body      string
		wantMeta  string // key=value that must be in meta
		wantNoKey bool
	}{
		{name: "olmocr_answer", in: "---\nprimary_language: en\nis_rotation_valid: True\nrotation_correction: 0\nis_table: False\nis_diagram: False\n---\n# Title\n\nText",
			ok: true, valid: true, body: "# Title\n\nText", wantMeta: "primary_language=en"},
		{name: "sideways_page", in: "---\nis_rotation_valid: False\nrotation_correction: 90\n---\nx", ok: true, valid: false, corr: 90, body: "x"},
		{name: "odd_correction_is_ignored", in: "---\nis_rotation_valid: false\nrotation_correction: 45\n---\nx", ok: true, valid: false, corr: 0, body: "x"},
		{name: "quoted_values", in: "---\nprimary_language: \"de\"\n---\nx", ok: true, valid: true, body: "x", wantMeta: "primary_language=de"},
		{name: "no_front_matter", in: "# Just markdown", ok: false, valid: true, body: "# Just markdown"},
		{name: "unterminated", in: "---\nprimary_language: en\n", ok: false, valid: true, body: "---\nprimary_language: en\n"},
		{name: "not_key_value", in: "---\nthis is prose\n---\nx", ok: false, valid: true, body: "---\nthis is prose\n---\nx"},
		{name: "crlf", in: "---\r\nis_rotation_valid: True\r\n---\r\nx", ok: true, valid: true, body: "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm, body, ok := parseFrontMatter(tc.in)
			assert.Equal(t, tc.ok, ok, "ok")
			assert.Equal(t, tc.valid, fm.rotationValid, "rotation valid")
			assert.Equal(t, tc.corr, fm.rotationCorrection, "rotation correction")
			assert.Equal(t, tc.body, body, "body")
			if tc.wantMeta != "" {
				k, v, _ := strings.Cut(tc.wantMeta, "=")
				assert.Equal(t, v, fm.meta[k], "meta %v lacks %s", fm.meta, tc.wantMeta)
			}
		})
	}
}

// FuzzFrontMatter: any answer splits without panicking, and a parsed body
// is a suffix of the answer.
func FuzzFrontMatter(f *testing.F) {
	f.Add("---\nprimary_language: en\nis_rotation_valid: False\nrotation_correction: 270\n---\nText")
	f.Fuzz(func(t *testing.T, s string) {
		_, body, ok := parseFrontMatter(s)
		if ok && !strings.HasSuffix(s, body) {
			t.Fatalf("body %q is not a suffix of %q", body, s)
		}
		if !ok && body != s {
			t.Fatalf("unparsed answer changed: %q", body)
		}
	})
}

func TestLooping(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want bool
	}{
		{"short_answer", "Hello world.", false},
		{"repeated_sentence", "Intro.\n" + strings.Repeat("The same line again. ", 80), true},
		{"repeated_table_row_with_text", strings.Repeat("<tr><td>total</td><td>12</td></tr>", 200), true},
		{"empty_table_cells_are_legitimate", strings.Repeat("<td></td>", 400), false},
		{"dot_leaders_are_legitimate", "Contents " + strings.Repeat(".", 2000) + " 7", false},
		{"long_varied_text", varied(3000), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, looping(tc.text), "looping")
		})
	}
}

func varied(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), 1+i%7))
		b.WriteString(" word")
		b.WriteString(string(rune('0' + i%10)))
		b.WriteByte(' ')
	}
	return b.String()
}

// overloadedOnce fails with a 429 on its first n calls; each call moves
// the clock on by step.
type overloadedOnce struct {
	mu   sync.Mutex
	n    int
	now  time.Time
	step time.Duration
}

func (o *overloadedOnce) Name() string { return "stub" }

func (o *overloadedOnce) clock() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.now
}

func (o *overloadedOnce) Recognize(ctx context.Context, p Page) (Result, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.now = o.now.Add(o.step)
	if o.n > 0 {
		o.n--
		return Result{}, &OverloadedError{RetryAfter: time.Millisecond}
	}
	return Result{Markdown: "ok"}, nil
}

// TestLimit_AIMD: a 429 halves the limit — once per burst: 429s closer
// together than the call latency (at least 100 ms) are one overload —
// and successes win it back one at a time.
func TestLimit_AIMD(t *testing.T) {
	for _, tc := range []struct {
		name      string
		step      time.Duration
		wantLimit int
	}{
		{name: "429s_apart_halve_twice", step: 150 * time.Millisecond, wantLimit: 2},
		{name: "429s_of_one_burst_halve_once", step: 10 * time.Millisecond, wantLimit: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := &overloadedOnce{n: 2, now: time.Unix(0, 0), step: tc.step}
			l := NewLimit(LimitConfig{Max: 8, now: inner.clock})(inner).(*limited)
			_, err := l.Recognize(t.Context(), Page{})
			require.NoError(t, err)
			limit, inflight := l.stats()
			require.Equal(t, tc.wantLimit, limit, "limit after two 429s")
			require.Equal(t, 0, inflight, "in flight after two 429s")
			for range tc.wantLimit + tc.wantLimit + 1 {
				_, err := l.Recognize(t.Context(), Page{})
				require.NoError(t, err)
			}
			limit, _ = l.stats()
			assert.Equal(t, tc.wantLimit+2, limit, "limit after a run of successes as long as the limit, twice")
		})
	}
}
