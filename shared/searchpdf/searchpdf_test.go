package searchpdf_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/searchpdf"
	"github.com/ocrflow/ocrflow/shared/searchpdf/pdftest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

const testdata = "../../testdata/"

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testdata + name)
	require.NoError(t, err)
	return b
}

// of yields pages in order.
func of(pages ...searchpdf.Page) searchpdf.Pages {
	return func(fn func(searchpdf.Page) error) error {
		for _, p := range pages {
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	}
}

// all is a source PDF whose pages 1..len(sizes) are all imported.
func all(path string, sizes ...[2]float64) searchpdf.Source {
	src := searchpdf.Source{Path: path, Sizes: map[int][2]float64{}, Import: map[int]bool{}}
	for i, s := range sizes {
		src.Sizes[i+1], src.Import[i+1] = s, true
	}
	return src
}

func picture(b []byte) func() ([]byte, error) { return func() ([]byte, error) { return b, nil } }

// line is a line of text at the top-left of an A4 page, n lines down.
func line(n int, text string) searchpdf.Line {
	y := 100 + float64(n)*20
	return searchpdf.Line{Box: document.Box{72, y, 72 + 6*float64(len(text)), y + 14}, Text: text}
}

// mixed is a PDF of an A4 page and a landscape page (fpdf, no text).
func mixed(t *testing.T) string {
	t.Helper()
	pdf := fpdf.NewCustom(&fpdf.InitType{UnitStr: "pt", Size: fpdf.SizeType{Wd: 595, Ht: 842}})
	pdf.AddPage()
	pdf.Rect(50, 50, 100, 100, "F")
	pdf.AddPageFormat("P", fpdf.SizeType{Wd: 842, Ht: 595})
	pdf.Rect(50, 50, 100, 100, "F")
	p := filepath.Join(t.TempDir(), "mixed.pdf")
	require.NoError(t, pdf.OutputFileAndClose(p))
	return p
}

func TestWrite_pages_as_asked(t *testing.T) {
	pdftest.Need(t)
	png, jpg := read(t, "page.png"), read(t, "page.jpg")
	broken := filepath.Join(t.TempDir(), "broken.pdf")
	require.NoError(t, os.WriteFile(broken, append(read(t, "scanned.pdf")[:5000], []byte("\n%%EOF\n")...), 0o600))
	for _, tc := range []struct {
		name      string
		src       searchpdf.Source
		pages     []searchpdf.Page
		wantSizes [][2]float64
		wantText  []string // per page, words pdftotext must find there
		wantRep   searchpdf.Report
		wantFail  string // ImportFailed contains
	}{
		{
			name: "scanned_pdf_pages_are_imported_with_text_over_them", src: all(testdata+"scanned.pdf", [2]float64{595, 842}, [2]float64{595, 842}),
			pages: []searchpdf.Page{
				{Number: 1, WidthPt: 595, HeightPt: 842, Lines: []searchpdf.Line{line(0, "Library Board Meeting"), line(1, "trustees present")}},
				{Number: 2, WidthPt: 595, HeightPt: 842, Lines: []searchpdf.Line{line(0, "second page words")}},
			},
			wantSizes: [][2]float64{{595, 842}, {595, 842}},
			wantText:  []string{"Library Board Meeting trustees present", "second page words"},
			wantRep:   searchpdf.Report{Pages: 2, Imported: 2},
		},
		{
			name: "image_pages_show_their_picture_full_page", pages: []searchpdf.Page{
				{Number: 1, WidthPt: 595.15, HeightPt: 842.33, Image: picture(png), Lines: []searchpdf.Line{line(0, "Weekend Waste Collection")}},
				{Number: 2, WidthPt: 595.2, HeightPt: 842.4, Image: picture(jpg), Lines: []searchpdf.Line{line(0, "a jpeg page")}},
			},
			wantSizes: [][2]float64{{595.15, 842.33}, {595.2, 842.4}},
			wantText:  []string{"Weekend Waste Collection", "a jpeg page"},
			wantRep:   searchpdf.Report{Pages: 2, FromImages: 2},
		},
		{
			name: "page_drawn_from_its_picture_takes_the_source_pages_exact_size",
			src:  searchpdf.Source{Path: testdata + "scanned_ocrlayer.pdf", Sizes: map[int][2]float64{1: {595, 842}}},
			pages: []searchpdf.Page{
				{Number: 1, WidthPt: 595, HeightPt: 842, Image: picture(jpg), Lines: []searchpdf.Line{line(0, "new layer words")}},
			},
			wantSizes: [][2]float64{{595.2, 842.4}},
			wantText:  []string{"new layer words"},
			wantRep:   searchpdf.Report{Pages: 1, FromImages: 1},
		},
		{
			name: "born_digital_page_keeps_its_own_text", src: searchpdf.Source{Path: testdata + "report.pdf", Sizes: map[int][2]float64{2: {595, 842}}, Import: map[int]bool{2: true}},
			pages: []searchpdf.Page{
				{Number: 2, WidthPt: 595, HeightPt: 842, OwnText: true, Lines: []searchpdf.Line{line(0, "NOT TO BE ADDED")}},
			},
			wantSizes: [][2]float64{{595, 842}},
			wantText:  []string{"Page 2:"},
			wantRep:   searchpdf.Report{Pages: 1, Imported: 1},
		},
		{
			name: "page_of_another_size_than_the_first_is_drawn_from_its_picture", src: all(mixed(t), [2]float64{595, 842}, [2]float64{842, 595}),
			pages: []searchpdf.Page{
				{Number: 1, WidthPt: 595, HeightPt: 842, Lines: []searchpdf.Line{line(0, "portrait words")}},
				{Number: 2, WidthPt: 842, HeightPt: 595, Image: picture(png), Lines: []searchpdf.Line{line(0, "landscape words")}},
			},
			wantSizes: [][2]float64{{595, 842}, {842, 595}},
			wantText:  []string{"portrait words", "landscape words"},
			wantRep:   searchpdf.Report{Pages: 2, Imported: 1, FromImages: 1},
		},
		{
			name: "unreadable_pdf_falls_back_to_pictures_and_visible_text", src: all(testdata+"bad/encrypted.pdf", [2]float64{595, 842}, [2]float64{595, 842}), // gofpdi panics on it
			pages: []searchpdf.Page{
				{Number: 1, WidthPt: 595, HeightPt: 842, Image: picture(jpg), Lines: []searchpdf.Line{line(0, "scanned words")}},
				{Number: 2, WidthPt: 595, HeightPt: 842, OwnText: true, Lines: []searchpdf.Line{line(0, "born digital words")}},
			},
			wantSizes: [][2]float64{{595, 842}, {595, 842}},
			wantText:  []string{"scanned words", "born digital words"},
			wantRep:   searchpdf.Report{Pages: 2, FromImages: 1, VisibleText: 1},
			wantFail:  "runtime error",
		},
		{
			name: "pdf_whose_trailer_points_outside_it_is_never_handed_to_gofpdi", src: all(testdata+"bad/broken-xref.pdf", [2]float64{595, 842}),
			pages:     []searchpdf.Page{{Number: 1, WidthPt: 595, HeightPt: 842, Image: picture(jpg), Lines: []searchpdf.Line{line(0, "cut words")}}},
			wantSizes: [][2]float64{{595, 842}},
			wantText:  []string{"cut words"},
			wantRep:   searchpdf.Report{Pages: 1, FromImages: 1},
			wantFail:  "is outside the file",
		},
		{
			name: "pdf_without_a_trailer_is_never_handed_to_gofpdi", src: all(broken, [2]float64{595, 842}),
			pages:     []searchpdf.Page{{Number: 1, WidthPt: 595, HeightPt: 842, Image: picture(jpg), Lines: []searchpdf.Line{line(0, "cut words")}}},
			wantSizes: [][2]float64{{595, 842}},
			wantText:  []string{"cut words"},
			wantRep:   searchpdf.Report{Pages: 1, FromImages: 1},
			wantFail:  "it has no startxref",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			rep, err := searchpdf.Write(&buf, tc.src, of(tc.pages...), searchpdf.Options{Created: time.Unix(1e9, 0), Title: tc.name})
			require.NoError(t, err)
			if tc.wantFail != "" {
				assert.Contains(t, rep.ImportFailed, tc.wantFail, "report")
				rep.ImportFailed = ""
			} else {
				assert.Empty(t, rep.ImportFailed, "report")
			}
			assert.Equal(t, tc.wantRep, rep, "report")
			sizes := pdftest.Pages(t, buf.Bytes())
			require.Len(t, sizes, len(tc.wantSizes), "pages")
			for i, want := range tc.wantSizes {
				assert.InDelta(t, want[0], sizes[i][0], 0.01, "page %d width", i+1)
				assert.InDelta(t, want[1], sizes[i][1], 0.01, "page %d height", i+1)
			}
			for i, want := range tc.wantText {
				got := pdftest.Text(t, buf.Bytes(), i+1, i+1)
				assert.Contains(t, pdftest.Normalize(got), pdftest.Normalize(want), "page %d text", i+1)
				assert.NotContains(t, got, "NOT TO BE ADDED", "page %d: a born-digital page gets no layer", i+1)
			}
		})
	}
}

func TestWrite_born_digital_pdf_keeps_its_text_exactly(t *testing.T) {
	pdftest.Need(t)
	src := read(t, "report.pdf")
	var pages []searchpdf.Page
	var sizes [][2]float64
	for n := 1; n <= 6; n++ {
		sizes = append(sizes, [2]float64{595, 842})
		pages = append(pages, searchpdf.Page{Number: n, WidthPt: 595, HeightPt: 842, OwnText: true, Lines: []searchpdf.Line{line(0, "extra")}})
	}
	var buf bytes.Buffer
	_, err := searchpdf.Write(&buf, all(testdata+"report.pdf", sizes...), of(pages...), searchpdf.Options{})
	require.NoError(t, err)
	for n := 1; n <= 6; n++ {
		assert.Equal(t, pdftest.Text(t, src, n, n), pdftest.Text(t, buf.Bytes(), n, n), "page %d: pdftotext of the searchable PDF is the original's", n)
	}
}

func TestLinesOf(t *testing.T) {
	box := func(x0, y0, x1, y1 float64) *document.Box { b := document.Box{x0, y0, x1, y1}; return &b }
	for _, tc := range []struct {
		name   string
		layout document.Layout
		want   []searchpdf.Line
	}{
		{"lines_of_a_block_are_its_own", document.Layout{Blocks: []document.Block{{
			BBox: box(0, 0, 100, 40), Text: "ignored",
			Lines: []document.Line{{BBox: document.Box{0, 0, 100, 20}, Text: "first"}, {BBox: document.Box{0, 20, 80, 40}, Text: "second"}},
		}}}, []searchpdf.Line{{Box: document.Box{0, 0, 100, 20}, Text: "first"}, {Box: document.Box{0, 20, 80, 40}, Text: "second"}}},
		{"one_line_block_stays_one_line", document.Layout{Blocks: []document.Block{{Label: "title", BBox: box(10, 10, 210, 30), Text: "# A short title"}}},
			[]searchpdf.Line{{Box: document.Box{10, 10, 210, 30}, Text: "A short title"}}},
		{"tall_paragraph_is_split_into_lines", document.Layout{Blocks: []document.Block{{BBox: box(0, 0, 100, 40),
			Text: "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"}}},
			[]searchpdf.Line{
				{Box: document.Box{0, 0, 100, 10}, Text: "one two three four five"},
				{Box: document.Box{0, 10, 100, 20}, Text: "six seven eight nine ten"},
				{Box: document.Box{0, 20, 100, 30}, Text: "eleven twelve thirteen"},
				{Box: document.Box{0, 30, 100, 40}, Text: "fourteen fifteen sixteen"},
			}},
		{"table_rows_are_lines", document.Layout{Blocks: []document.Block{{Label: "table", BBox: box(0, 0, 100, 30),
			Text: "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>"}}},
			[]searchpdf.Line{{Box: document.Box{0, 0, 100, 30}, Text: "a b c d"}}},
		{"blocks_without_boxes_are_stacked_down_the_page", document.Layout{WidthPt: 600, HeightPt: 1200, Blocks: []document.Block{
			{Text: "first paragraph"}, {Text: "- an item"},
		}}, []searchpdf.Line{
			{Box: document.Box{50, 100, 155, 114}, Text: "first paragraph"},
			{Box: document.Box{50, 114, 99, 128}, Text: "an item"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, searchpdf.LinesOf(tc.layout))
		})
	}
}

func TestPlain(t *testing.T) {
	for _, tc := range []struct{ name, md, want string }{
		{"heading", "## Results", "Results"},
		{"emphasis_and_list_marker", "- **bold** and `code`", "bold and code"},
		{"pipe_table", "| a | b |\n| --- | --- |\n| 1 | 2 |", "a b\n1 2"},
		{"html_table", "<table><tr><td>x</td><td>y &amp; z</td></tr></table>", "x y & z"},
		{"image_and_comment_go", "![](images/1_0.jpg)\n<!-- image: a.png -->\nCaption", "Caption"},
		{"link_keeps_its_text", "see [the site](https://x)", "see the site"},
		{"formula_stays", `\[ x^2 \]`, `\[ x^2 \]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, searchpdf.Plain(tc.md))
		})
	}
}

func TestNormalize_and_CER(t *testing.T) {
	for _, tc := range []struct {
		name, want, got string
		cer             float64
	}{
		{"identical_after_normalizing", "# Hello  World\n", "hello world", 0},
		{"one_substitution_in_ten", "abcdefghij", "abcdefghiX", 0.1},
		{"nothing_recovered", "abc", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.cer, pdftest.CER(tc.want, tc.got), 1e-9)
			assert.Equal(t, tc.cer == 0, pdftest.Same(tc.want, tc.got))
		})
	}
	assert.True(t, strings.HasPrefix(pdftest.Normalize("A  B"), "a b"))
}
