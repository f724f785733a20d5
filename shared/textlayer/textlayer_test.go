package textlayer_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

func analyze(t *testing.T, file string) []textlayer.Analysis {
	t.Helper()
	doc, err := render.Open(context.Background(), "../../testdata/"+file, render.Limits{})
	require.NoError(t, err)
	defer func() { assert.NoError(t, doc.Close()) }()
	var out []textlayer.Analysis
	for n := 1; n <= doc.Pages(); n++ {
		h, w, hh, ok, err := doc.PageHTML(context.Background(), n)
		require.NoError(t, err, "page %d html", n)
		require.True(t, ok, "page %d html: ok", n)
		out = append(out, textlayer.Analyze(h, w, hh))
	}
	return out
}

// sourcePages splits a testdata .txt (pages separated by a form feed line).
func sourcePages(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/" + file)
	require.NoError(t, err)
	return strings.Split(string(b), "\f")
}

func TestAnalyze_routes(t *testing.T) {
	for _, tc := range []struct {
		name, file  string
		wantTrusted bool
	}{
		{"born_digital_pages_take_their_text", "report.pdf", true},
		{"image_only_scans_need_ocr", "scanned.pdf", false},
		{"invisible_ocr_layer_over_a_scan_needs_ocr", "scanned_ocrlayer.pdf", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, a := range analyze(t, tc.file) {
				assert.Equal(t, tc.wantTrusted, a.Trusted(textlayer.ModeAuto), "page %d: trusted (score %.2f, chars %d, bad %d, image coverage %.2f)",
					i+1, a.Score, a.Chars, a.BadGlyphs, a.ImageCoverage)
			}
		})
	}
}

func TestAnalyze_born_digital_markdown_matches_source(t *testing.T) {
	src := sourcePages(t, "report.txt")
	pages := analyze(t, "report.pdf")
	require.Len(t, pages, len(src), "pages, as many as the source has")
	for i, a := range pages {
		assert.True(t, strings.HasPrefix(a.Markdown, "# Page "), "page %d: the 18 pt heading is not a markdown heading: %.60q", i+1, a.Markdown)
		plain := strings.ReplaceAll(a.Markdown, "# ", "")
		assert.LessOrEqual(t, CER(src[i], plain), 0.01, "page %d: character error rate > 1%%", i+1)
		paras := strings.Count(strings.TrimSpace(src[i]), "\n\n") + 1
		assert.Equal(t, paras, strings.Count(strings.TrimSpace(a.Markdown), "\n\n")+1, "page %d: blocks, as many as the source's paragraphs", i+1)
	}
}

func TestAnalyze_scores_broken_layers_low(t *testing.T) {
	p := func(s string) string {
		return `<div id="page0"><p style="top:10pt;left:10pt;line-height:11pt"><span style="font-size:11pt">` + s + `</span></p></div>`
	}
	prose := strings.Repeat("The quick brown fox jumps over the lazy dog near the river bank. ", 8)
	for _, tc := range []struct {
		name    string
		html    string
		trusted bool
	}{
		{"clean_prose", p(prose), true},
		{"replacement_characters", p(strings.Repeat("Th\uFFFD qu\uFFFDck \uFFFDrown ", 20)), false},
		{"private_use_glyphs", p(strings.Repeat("\uE001\uE002\uE003 word ", 30)), false},
		{"glyph_artefacts", p(strings.Repeat("GLYPH<c=3,font=/AAA> /G123 text ", 20)), false},
		{"glued_words", p(strings.Repeat("Thequickbrownfoxjumpsoverthelazydog", 10)), false},
		{"empty_page", `<div id="page0"></div>`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := textlayer.Analyze(tc.html, 595, 842)
			assert.Equal(t, tc.trusted, a.Trusted(textlayer.ModeAuto), "trusted (score %.2f, bad %d)", a.Score, a.BadGlyphs)
		})
	}
}

func TestAnalyze_lists_and_headings(t *testing.T) {
	html := `<div id="page0">
<p style="top:50pt;left:72pt;line-height:20pt"><b><span style="font-size:20pt">Annual Report</span></b></p>
<p style="top:90pt;left:72pt;line-height:14pt"><b><span style="font-size:14pt">Highlights</span></b></p>
<p style="top:120pt;left:72pt;line-height:11pt"><span style="font-size:11pt">Revenue grew across all regions this year.</span></p>
<p style="top:140pt;left:72pt;line-height:11pt"><span style="font-size:11pt">• Water quality met every standard</span></p>
<p style="top:154pt;left:72pt;line-height:11pt"><span style="font-size:11pt">• Two new pumping stations opened</span></p>
<p style="top:176pt;left:72pt;line-height:11pt"><span style="font-size:11pt">1. Replace the oldest mains</span></p>
</div>`
	got := textlayer.Analyze(html, 595, 842).Markdown
	for _, want := range []string{"# Annual Report\n", "## Highlights\n", "Revenue grew across all regions this year.\n",
		"- Water quality met every standard\n- Two new pumping stations opened\n", "1. Replace the oldest mains\n"} {
		assert.Contains(t, got, want, "markdown lacks %q", want)
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want textlayer.Mode
		ok   bool
	}{{"auto", textlayer.ModeAuto, true}, {" OFF ", textlayer.ModeOff, true}, {"only", textlayer.ModeOnly, true}, {"sometimes", "", false}} {
		got, ok := textlayer.ParseMode(tc.in)
		assert.Equal(t, tc.want, got, "ParseMode(%q)", tc.in)
		assert.Equal(t, tc.ok, ok, "ParseMode(%q) ok", tc.in)
	}
}

// CER is the character error rate of got against want: Levenshtein
// distance over whitespace-normalised text, divided by len(want).
func CER(want, got string) float64 {
	a := []rune(strings.Join(strings.Fields(want), " "))
	b := []rune(strings.Join(strings.Fields(got), " "))
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	if len(a) == 0 {
		return 0
	}
	return float64(prev[len(b)]) / float64(len(a))
}

// FuzzAnalyze: any HTML, however broken, is scored in [0,1] without panic.
func FuzzAnalyze(f *testing.F) {
	for _, seed := range []string{
		`<div id="page0"><p style="top:10pt;left:10pt;line-height:11pt"><span style="font-size:11pt">Hello world</span></p></div>`,
		`<p style="top:-1pt;line-height:0pt"><b><span style="font-size:99pt">• x</span></b></p>`,
		`<img style="position:absolute;transform:matrix(.64,0,-0,.64,-1,-1)" src="data:image/jpeg;base64,/9j/4AAQ`,
		"GLYPH<c=1> /G12 \uFFFD\uE000",
	} {
		f.Add(seed, 595.0, 842.0)
	}
	f.Fuzz(func(t *testing.T, html string, w, h float64) {
		a := textlayer.Analyze(html, w, h)
		if a.Score < 0 || a.Score > 1 || a.Score != a.Score {
			t.Fatalf("score %v out of [0,1]", a.Score)
		}
	})
}

// TestAnalyze_tables: a table in a born-digital PDF (report.docx printed
// by LibreOffice) becomes a markdown table, wrapped cell included, between
// the text around it; the prose pages of report.pdf hold none.
func TestAnalyze_tables(t *testing.T) {
	pages := analyze(t, "table.pdf")
	require.GreaterOrEqual(t, len(pages), 2, "pages")
	want := "Regional results\n\n" +
		"| Region | Revenue | Change |\n" +
		"| --- | --- | --- |\n" +
		"| North | 1,200 | +5% |\n" +
		"| South | 950 (est.) | -2% |\n" +
		"| Total \\| all regions | +3% |  |\n"
	require.Contains(t, pages[1].Markdown, want, "page 2 markdown")
	// Bullets LibreOffice sets apart from their text are list items, not
	// a two-column table, and the list ends before the next paragraph.
	md := pages[0].Markdown
	assert.Contains(t, md, "- Revenue up 12%\n- Costs down 3%\n", "page 1 markdown: want its bullets as a list")
	assert.Contains(t, md, "- Headcount stable\n\nNext steps:", "page 1 markdown: want the list to end before the next paragraph")
	assert.NotContains(t, md, "| --- |", "page 1 markdown: want no table")
	for n, p := range analyze(t, "report.pdf") {
		assert.NotContains(t, p.Markdown, "| --- |", "report.pdf page %d (prose) became a table", n+1)
	}
	// Two columns of prose sit side by side like cells, but their lines
	// are too long to be cells.
	col := func(top, left int, text string) string {
		return fmt.Sprintf(`<p style="top:%dpt;left:%dpt;line-height:11pt"><span style="font-size:11pt">%s</span></p>`, top, left, text)
	}
	twoCol := `<div id="page0">` +
		col(100, 72, "The plant ran at full capacity through the") + col(100, 320, "Customer calls fell by a fifth after the new") +
		col(113, 72, "summer, and the second filter bank came on") + col(113, 320, "billing system replaced the paper statements") +
		col(126, 72, "line two weeks ahead of the schedule set.") + col(126, 320, "that had caused most of last year's queries.") +
		`</div>`
	assert.NotContains(t, textlayer.Analyze(twoCol, 595, 842).Markdown, "|", "two-column prose became a table")
	// Bullets from a symbol font arrive as private-use glyphs (U+F0B7 in
	// Word's Symbol bullet), set apart from their text: still a list.
	symbolBullets := `<div id="page0">` +
		col(100, 90, "\uf0b7") + col(100, 108, "Revenue up 12%") +
		col(113, 90, "\uf0b7") + col(113, 108, "Costs down 3%") +
		col(126, 108, "o") + col(126, 126, "Mainly energy") +
		`</div>`
	assert.Equal(t, "- Revenue up 12%\n- Costs down 3%\n- Mainly energy\n", textlayer.Analyze(symbolBullets, 595, 842).Markdown,
		"symbol-font bullets: want a three-item list")
	// Right-aligned numbers start at a different left on every row: the
	// columns do not line up, the grid is mostly holes, and it stays text
	// rather than a table with cells in the wrong columns.
	ragged := `<div id="page0">` +
		col(100, 72, "Paper") + col(100, 200, "10") + col(100, 300, "4.50") +
		col(113, 72, "Toner") + col(113, 196, "2") + col(113, 290, "79.90") +
		col(126, 72, "Desk") + col(126, 207, "1") + col(126, 280, "1,249.00") +
		`</div>`
	md = textlayer.Analyze(ragged, 595, 842).Markdown
	assert.NotContains(t, md, "| --- |", "ragged grid: want its text, not a table")
	assert.Contains(t, md, "1,249.00", "ragged grid: want its text, not a table")
}
