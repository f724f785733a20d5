package recognize_test

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/recognize"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestLayout_golden maps recorded engine answers onto their page in
// points and compares the layout with testdata/layout/*.json (go test
// -run Layout_golden -update rewrites them): DeepSeek-OCR grounding
// (0–999 → the rendered image's pixels → points) from shared/engine's
// grounding samples, on an A4 page rendered 1000×1414; tesseract's TSV
// word boxes of testdata/page.png (1240×1755 px at 150 dpi).
func TestLayout_golden(t *testing.T) {
	type sample struct {
		name   string
		engine string
		page   events.PageRendered
		res    engine.Result
		// px are the answer's boxes in pixels, block by block.
		px [][][4]int
	}
	var samples []sample
	raws, err := filepath.Glob(filepath.Join("..", "..", "shared", "engine", "testdata", "grounding", "*.raw"))
	require.NoError(t, err)
	require.NotEmpty(t, raws, "no grounding samples")
	a4 := events.PageRendered{Page: 3, Width: 1000, Height: 1414, WidthPt: 595, HeightPt: 842}
	for _, raw := range raws {
		in, err := os.ReadFile(raw)
		require.NoError(t, err)
		g := engine.ParseGrounding(string(in), 3, a4.Width, a4.Height)
		s := sample{name: "grounding_" + strings.TrimSuffix(filepath.Base(raw), ".raw"), engine: engine.NameVLLM, page: a4,
			res: engine.Result{Markdown: g.Markdown, Blocks: g.Blocks}}
		for _, b := range g.Blocks {
			s.px = append(s.px, b.Boxes)
		}
		samples = append(samples, s)
	}
	out, err := os.ReadFile(filepath.Join("..", "..", "shared", "engine", "testdata", "tesseract", "page.out"))
	require.NoError(t, err)
	md, blocks := engine.ParseTesseract(string(out))
	ts := sample{name: "tesseract_page", engine: engine.NameTesseract,
		page: events.PageRendered{Page: 1, Width: 1240, Height: 1755, WidthPt: 595.15, HeightPt: 842.33},
		res:  engine.Result{Markdown: md, Blocks: blocks, Steps: []string{engine.StepLoop}}}
	for _, b := range blocks {
		ts.px = append(ts.px, b.Boxes)
	}
	samples = append(samples, ts)

	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			l := recognize.Layout(s.page, s.engine, s.res)
			got, err := json.MarshalIndent(l, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			path := filepath.Join("testdata", "layout", s.name+".json")
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), string(got), "%s differs", path)

			sx, sy := s.page.WidthPt/float64(s.page.Width), s.page.HeightPt/float64(s.page.Height)
			k := 0
			for _, boxes := range s.px {
				if len(boxes) == 0 {
					continue
				}
				require.Less(t, k, len(l.Blocks))
				b := l.Blocks[k]
				for k < len(l.Blocks) && l.Blocks[k].BBox == nil {
					k++
					b = l.Blocks[k]
				}
				require.NotNil(t, b.BBox)
				assert.True(t, b.BBox.Inside(s.page.WidthPt, s.page.HeightPt), "block %d box %v outside the page", k, *b.BBox)
				want := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
				for _, px := range boxes {
					want = [4]float64{math.Min(want[0], float64(px[0])*sx), math.Min(want[1], float64(px[1])*sy), math.Max(want[2], float64(px[2])*sx), math.Max(want[3], float64(px[3])*sy)}
				}
				for i := range 4 {
					assert.InDelta(t, want[i], b.BBox[i], 0.006, "block %d: coordinate %d is the pixels' times the scale", k, i)
				}
				k++
			}
			for _, b := range l.Blocks {
				assert.Contains(t, document.Labels, b.Label, "label")
			}
		})
	}
}
