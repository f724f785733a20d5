package textlayer_test

import (
	"context"
	"encoding/xml"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

// popplerLines returns poppler's line boxes of page n (pdftotext
// -bbox-layout), keyed by the line's text.
func popplerLines(t *testing.T, file string, n int) map[string]document.Box {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext (poppler-utils) is not installed")
	}
	out, err := exec.Command("pdftotext", "-bbox-layout", "-f", strconv.Itoa(n), "-l", strconv.Itoa(n), "../../testdata/"+file, "-").Output()
	require.NoError(t, err, "pdftotext -bbox-layout")
	type word struct {
		Text string `xml:",chardata"`
	}
	type xline struct {
		XMin  float64 `xml:"xMin,attr"`
		YMin  float64 `xml:"yMin,attr"`
		XMax  float64 `xml:"xMax,attr"`
		YMax  float64 `xml:"yMax,attr"`
		Words []word  `xml:"word"`
	}
	lines := map[string]document.Box{}
	dec := xml.NewDecoder(strings.NewReader(string(out)))
	dec.Strict = false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "line" {
			continue
		}
		var l xline
		require.NoError(t, dec.DecodeElement(&l, &se))
		var ws []string
		for _, w := range l.Words {
			ws = append(ws, w.Text)
		}
		lines[strings.Join(ws, " ")] = document.Box{l.XMin, l.YMin, l.XMax, l.YMax}
	}
	require.NotEmpty(t, lines, "poppler found no lines on page %d of %s", n, file)
	return lines
}

// TestAnalyze_blocks_have_the_boxes_of_their_lines: every line box of the
// born-digital samples matches poppler's box of the same line (its right
// edge is estimated from the font's metrics), every block's box holds its
// lines, and the blocks' texts are the markdown's, in order.
func TestAnalyze_blocks_have_the_boxes_of_their_lines(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
	}{
		{"report_prose_and_headings", "report.pdf"},
		{"table_lists_and_a_table", "table.pdf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			doc, err := render.Open(ctx, "../../testdata/"+tc.file, render.Limits{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, doc.Close()) }()
			for n := 1; n <= doc.Pages(); n++ {
				h, w, hh, ok, err := doc.PageHTML(ctx, n)
				require.NoError(t, err)
				require.True(t, ok)
				a := textlayer.Analyze(h, w, hh)
				require.NotEmpty(t, a.Blocks, "page %d has no blocks", n)
				want := popplerLines(t, tc.file, n)
				matched, rest := 0, a.Markdown
				for i, b := range a.Blocks {
					require.NotNil(t, b.BBox, "page %d block %d has no box", n, i)
					assert.True(t, b.BBox.Inside(w, hh), "page %d block %d box %v outside the page", n, i, *b.BBox)
					k := strings.Index(rest, b.Text)
					if assert.GreaterOrEqual(t, k, 0, "page %d block %d text %.60q is not next in the markdown", n, i, b.Text) {
						rest = rest[k+len(b.Text):]
					}
					for _, l := range b.Lines {
						assert.Equal(t, *b.BBox, b.BBox.Union(l.BBox), "page %d block %d: line %v sticks out of the block %v", n, i, l.BBox, *b.BBox)
						p, ok := want[l.Text]
						if !ok {
							continue // poppler splits or joins this line otherwise
						}
						matched++
						assert.InDelta(t, p[0], l.BBox[0], 1, "page %d line %q: left edge", n, l.Text)
						assert.InDelta(t, p[2], l.BBox[2], 1+0.03*p.Width(), "page %d line %q: right edge (estimated within 3 %%: kerning is not known)", n, l.Text)
						assert.LessOrEqual(t, math.Abs((p[1]+p[3])/2-(l.BBox[1]+l.BBox[3])/2), 3.0, "page %d line %q: vertical centre %v vs poppler's %v", n, l.Text, l.BBox, p)
					}
				}
				assert.Empty(t, strings.TrimSpace(rest), "page %d: markdown left over after the last block", n)
				assert.GreaterOrEqual(t, matched, len(want)/3, "page %d: lines matched to poppler's (it splits list markers from their text)", n)
			}
		})
	}
}
