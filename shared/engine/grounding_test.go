package engine_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/engine"
)

// groundingPage is the page size the golden outputs are mapped onto.
const groundingW, groundingH = 1000, 1414

// TestParseGrounding_golden parses real-shaped DeepSeek-OCR answers
// (testdata/grounding/*.raw: tables as HTML, equations, images and
// captions, several boxes per ref, malformed markup) and compares the
// markdown and the block sidecar with *.md and *.blocks.json
// (go test -run ParseGrounding_golden -update rewrites them).
func TestParseGrounding_golden(t *testing.T) {
	raws, err := filepath.Glob(filepath.Join("testdata", "grounding", "*.raw"))
	require.NoError(t, err, "no golden inputs")
	require.NotEmpty(t, raws, "no golden inputs")
	for _, raw := range raws {
		name := strings.TrimSuffix(filepath.Base(raw), ".raw")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(raw)
			require.NoError(t, err)
			g := engine.ParseGrounding(string(in), 3, groundingW, groundingH)
			blocks, err := json.MarshalIndent(g.Blocks, "", "  ")
			require.NoError(t, err)
			for _, f := range []struct {
				ext string
				got []byte
			}{{".md", []byte(g.Markdown)}, {".blocks.json", append(blocks, '\n')}} {
				path := strings.TrimSuffix(raw, ".raw") + f.ext
				if *update {
					require.NoError(t, os.WriteFile(path, f.got, 0o644))
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "run with -update to create it")
				assert.Equal(t, string(want), string(f.got), "%s differs", path)
			}
			checkGrounded(t, g)
		})
	}
}

// checkGrounded asserts what must hold for any answer.
func checkGrounded(t *testing.T, g engine.Grounded) {
	t.Helper()
	malformed := false
	for i, b := range g.Blocks {
		require.True(t, b.Start >= 0 && b.End <= len(g.Markdown) && b.Start <= b.End,
			"block %d (%s): span [%d,%d) is not within the markdown (%d bytes)", i, b.Label, b.Start, b.End, len(g.Markdown))
		require.Equal(t, b.Text, g.Markdown[b.Start:b.End], "block %d (%s): span [%d,%d) is not its text", i, b.Label, b.Start, b.End)
		for _, box := range b.Boxes {
			require.True(t, box[0] >= 0 && box[1] >= 0 && box[2] <= groundingW && box[3] <= groundingH && box[0] <= box[2] && box[1] <= box[3],
				"block %d (%s): box %v is outside the %d×%d page", i, b.Label, box, groundingW, groundingH)
		}
		malformed = malformed || b.Malformed
	}
	if !malformed {
		require.False(t, engine.HasGroundingTags(g.Markdown), "tags left in markdown without malformed blocks:\n%s", g.Markdown)
	}
}

func TestParseGrounding_rules(t *testing.T) {
	for _, tc := range []struct {
		name       string
		raw        string
		wantMD     string
		wantLabels string
		wantBoxes  [][4]int // of the first block with boxes
		wantBad    bool
	}{
		{name: "plain_text_is_one_unlabelled_block", raw: "Hello.", wantMD: "Hello.", wantLabels: ""},
		{name: "header_is_removed", raw: "<|ref|>text<|/ref|><|det|>[[0, 0, 999, 999]]<|/det|>\nHello.", wantMD: "Hello.", wantLabels: "text",
			wantBoxes: [][4]int{{0, 0, groundingW, groundingH}}},
		{name: "spaces_inside_the_box_list", raw: "<|ref|>text<|/ref|><|det|> [ [ 1 ,2, 3,4 ] ] <|/det|>x", wantMD: "x", wantLabels: "text",
			wantBoxes: [][4]int{{1, 3, 3, 6}}},
		{name: "image_becomes_the_authors_link", raw: "<|ref|>image<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\n", wantMD: "![](images/3_0.jpg)", wantLabels: "image",
			wantBoxes: [][4]int{{1, 3, 3, 6}}},
		{name: "eos_token_stripped", raw: "Done.<｜end▁of▁sentence｜>", wantMD: "Done.", wantLabels: ""},
		{name: "coloneqq_and_eqqcolon", raw: `a \coloneqq b \eqqcolon c`, wantMD: "a := b =: c", wantLabels: ""},
		{name: "three_newlines_collapse", raw: "a\n\n\n\nb", wantMD: "a\n\nb", wantLabels: ""},
		{name: "empty_label_is_malformed", raw: "<|ref|><|/ref|><|det|>[[1,2,3,4]]<|/det|>x", wantMD: "<|ref|><|/ref|><|det|>[[1,2,3,4]]<|/det|>x", wantBad: true},
		{name: "label_with_newline_is_malformed", raw: "<|ref|>te\nxt<|/ref|><|det|>[[1,2,3,4]]<|/det|>x", wantMD: "<|ref|>te\nxt<|/ref|><|det|>[[1,2,3,4]]<|/det|>x", wantBad: true},
		{name: "missing_det_is_malformed", raw: "<|ref|>text<|/ref|>x", wantMD: "<|ref|>text<|/ref|>x", wantBad: true},
		{name: "five_coordinates_is_malformed", raw: "<|ref|>t<|/ref|><|det|>[[1,2,3,4,5]]<|/det|>x", wantMD: "<|ref|>t<|/ref|><|det|>[[1,2,3,4,5]]<|/det|>x", wantBad: true},
		{name: "negative_coordinate_is_malformed", raw: "<|ref|>t<|/ref|><|det|>[[-1,2,3,4]]<|/det|>x", wantMD: "<|ref|>t<|/ref|><|det|>[[-1,2,3,4]]<|/det|>x", wantBad: true},
		{name: "float_coordinate_is_malformed", raw: "<|ref|>t<|/ref|><|det|>[[1.5,2,3,4]]<|/det|>x", wantMD: "<|ref|>t<|/ref|><|det|>[[1.5,2,3,4]]<|/det|>x", wantBad: true},
		{name: "trailing_garbage_in_det_is_malformed", raw: "<|ref|>t<|/ref|><|det|>[[1,2,3,4]] x<|/det|>y", wantMD: "<|ref|>t<|/ref|><|det|>[[1,2,3,4]] x<|/det|>y", wantBad: true},
		{name: "truncated_header_is_kept", raw: "a\n<|ref|>tab", wantMD: "a\n\n<|ref|>tab", wantBad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := engine.ParseGrounding(tc.raw, 3, groundingW, groundingH)
			assert.Equal(t, tc.wantMD, g.Markdown, "markdown")
			var labels []string
			bad := false
			var boxes [][4]int
			for _, b := range g.Blocks {
				if b.Label != "" {
					labels = append(labels, b.Label)
				}
				if boxes == nil {
					boxes = b.Boxes
				}
				bad = bad || b.Malformed
			}
			assert.Equal(t, tc.wantLabels, strings.Join(labels, ","), "labels %v", labels)
			assert.Equal(t, tc.wantBad, bad, "malformed")
			if tc.wantBoxes != nil {
				assert.Equal(t, tc.wantBoxes, boxes, "boxes")
			}
			checkGrounded(t, g)
		})
	}
}

// FuzzParseGrounding: any answer parses without panicking, and spans and
// boxes stay consistent. The seed corpus (testdata/fuzz/FuzzParseGrounding)
// runs with every `go test`; explore with
//
//	go test -run '^$' -fuzz FuzzParseGrounding -fuzztime 60s ./shared/engine/
func FuzzParseGrounding(f *testing.F) {
	raws, _ := filepath.Glob(filepath.Join("testdata", "grounding", "*.raw"))
	for _, r := range raws {
		if b, err := os.ReadFile(r); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkGrounded(t, engine.ParseGrounding(raw, 1, groundingW, groundingH))
	})
}
