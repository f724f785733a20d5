package office_test

import (
	"archive/zip"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/office"
)

var update = flag.Bool("update", false, "rewrite the golden markdown files in testdata/office")

// samples is where go run ./testdata/office/gen writes the samples.
const samples = "../../testdata/office"

// pageSep joins pages in the golden files.
const pageSep = "\n<!-- page break -->\n"

func sample(name string) string { return filepath.Join(samples, name) }

func TestExtract_golden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   string
		kind   office.Kind
		golden string
		pages  int
		// images lists per page the pictures expected, as "name mime WxH".
		images map[int][]string
	}{
		{
			name: "docx_report", file: "report.docx", kind: office.DOCX, golden: "report.md", pages: 3,
			// image2.png is a 16×16 icon: below the floor, so neither listed nor placeholdered.
			images: map[int][]string{1: {"image1.png image/png 405x180"}},
		},
		{
			name: "pptx_slides_in_presentation_order", file: "slides.pptx", kind: office.PPTX, golden: "slides.md", pages: 3,
			images: map[int][]string{2: {"image1.png image/png 405x180"}},
		},
		{
			name: "xlsx_ledger", file: "ledger.xlsx", kind: office.XLSX, golden: "ledger.md", pages: 3,
			images: map[int][]string{1: {"image1.png image/png 405x180"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pages, err := office.Extract(context.Background(), sample(tc.file), tc.kind, office.Limits{})
			require.NoError(t, err, "Extract")
			assert.Len(t, pages, tc.pages, "pages")
			var mds []string
			for i, p := range pages {
				mds = append(mds, p.Markdown)
				var got []string
				for _, img := range p.Images {
					got = append(got, fmt.Sprintf("%s %s %dx%d", img.Name, img.MIME, img.Width, img.Height))
					assert.GreaterOrEqual(t, len(img.Data), office.MinImageBytes, "page %d: image %s bytes", i, img.Name)
					assert.Contains(t, p.Markdown, "<!-- image: "+img.Name+" -->", "page %d: no placeholder for %s", i, img.Name)
				}
				assert.Equal(t, strings.Join(tc.images[i], ";"), strings.Join(got, ";"), "page %d images", i)
			}
			got := strings.Join(mds, pageSep) + "\n"
			golden := sample(tc.golden)
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "read golden (run with -update to create it)")
			assert.Equal(t, string(want), got, "markdown differs from %s (run with -update after checking)", golden)
		})
	}
}

// TestExtract_docx_semantics pins the DOCX rules the golden file encodes,
// so a careless -update cannot silently drop them.
func TestExtract_docx_semantics(t *testing.T) {
	pages, err := office.Extract(context.Background(), sample("report.docx"), office.DOCX, office.Limits{})
	require.NoError(t, err)
	all := ""
	for _, p := range pages {
		all += p.Markdown + "\n"
	}
	for _, tc := range []struct {
		name, text string
		present    bool
	}{
		{"title_style_is_h1", "# Annual Report 2026\n", true},
		{"localised_heading_id_resolved_by_name", "# Summary\n", true},
		{"basedOn_chain_reaches_heading_2", "## Highlights\n", true},
		{"outline_level_gives_h3", "### Regional results\n", true},
		{"bold_italic_runs", "**the full year** and *all regions*", true},
		{"nested_bullet", "\n  - Mainly energy\n", true},
		{"style_based_bullet", "- Headcount stable", true},
		{"nested_numbered", "\n  1. Hire a regional lead\n", true},
		{"pipe_escaped_in_cell", `Total \| all regions`, true},
		{"inserted_text_kept", "(audited)", true},
		{"deleted_text_dropped", "DELETED", false},
		{"hidden_text_dropped", "SECRET", false},
		{"text_box_once", "Boxed note", true},
		{"tiny_icon_not_placeholdered", "image2.png", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := 0
			if tc.present {
				want = 1
			}
			assert.Equal(t, want, strings.Count(all, tc.text), "occurrences of %q, want present=%v (once)", tc.text, tc.present)
		})
	}
	// Page 1 ends at the explicit page break; the continuous section break
	// after "End of figures." does not split page 2; the next-page one does.
	require.GreaterOrEqual(t, len(pages), 3, "pages")
	assert.True(t, strings.HasSuffix(pages[0].Markdown, "1. Review pricing"), "page split wrong: page 1 is\n%s", pages[0].Markdown)
	assert.Contains(t, pages[1].Markdown, "End of figures.\n\nContinuous section text.", "page split wrong: page 2")
	assert.True(t, strings.HasPrefix(pages[2].Markdown, "# Appendix"), "page split wrong: page 3 is\n%s", pages[2].Markdown)
}

func TestExtract_bad_input(t *testing.T) {
	xlsxBomb := writeTemp(t, "bomb.xlsx", xlsxZipBomb(t))
	for _, tc := range []struct {
		name    string
		file    string // under testdata/office, or an absolute path
		kind    office.Kind
		lim     office.Limits
		wantMsg string
	}{
		{"docx_zip_bomb_lying_header", "zipbomb.docx", office.DOCX, office.Limits{}, "word/document.xml is damaged or expands beyond its declared size (zip bomb guard)"},
		{"xlsx_zip_bomb_lying_header", xlsxBomb, office.XLSX, office.Limits{}, "the xlsx part xl/worksheets/sheet1.xml is damaged or expands beyond its declared size (zip bomb guard)"},
		{"declared_total_over_limit", "report.docx", office.DOCX, office.Limits{MaxUncompressed: 4 << 10}, "the docx expands to more than 4 KiB (zip bomb guard)"},
		{"xlsx_declared_total_over_limit", "ledger.xlsx", office.XLSX, office.Limits{MaxUncompressed: 4 << 10}, "the xlsx expands to more than 4 KiB (zip bomb guard)"},
		{"too_many_entries", "many-entries.docx", office.DOCX, office.Limits{}, "more than the limit of 10000 (zip bomb guard)"},
		{"too_many_entries_custom_limit", "report.docx", office.DOCX, office.Limits{MaxEntries: 3}, "more than the limit of 3 (zip bomb guard)"},
		{"docx_path_traversal", "traversal.docx", office.DOCX, office.Limits{}, `unsafe entry name "../../evil.txt" (path traversal guard)`},
		{"pptx_path_traversal", "traversal.docx", office.PPTX, office.Limits{}, `unsafe entry name "../../evil.txt"`},
		{"xlsx_path_traversal", "traversal.docx", office.XLSX, office.Limits{}, `unsafe entry name "../../evil.txt"`},
		{"not_a_zip", "not-a-zip.docx", office.DOCX, office.Limits{}, "the docx file is damaged or is not an Office Open XML (zip) file"},
		{"truncated", "truncated.docx", office.DOCX, office.Limits{}, "the docx file is damaged"},
		{"empty_file", "empty.docx", office.DOCX, office.Limits{}, "the docx file is empty"},
		{"encrypted_or_legacy", "encrypted.docx", office.DOCX, office.Limits{}, "password-protected or a legacy binary Office file"},
		{"no_main_part", "no-document.docx", office.DOCX, office.Limits{}, "not a Word document: it has no word/document.xml"},
		{"malformed_xml", "malformed-xml.docx", office.DOCX, office.Limits{}, "word/document.xml is not well-formed XML"},
		{"docx_read_as_pptx", "report.docx", office.PPTX, office.Limits{}, "not a PowerPoint presentation"},
		{"pptx_read_as_xlsx", "slides.pptx", office.XLSX, office.Limits{}, "not an Excel workbook"},
		{"sheet_cell_limit", "ledger.xlsx", office.XLSX, office.Limits{MaxSheetCells: 10}, `the xlsx sheet "Ledger" has more than 10 cells`},
		{"unknown_kind", "report.docx", office.Kind("odt"), office.Limits{}, `office kind "odt" is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.file
			if !filepath.IsAbs(path) {
				path = sample(path)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			pages, err := office.Extract(context.Background(), path, tc.kind, tc.lim)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, failure.ErrValidation, "pages %d, want a validation error", len(pages))
			assert.ErrorContains(t, err, tc.wantMsg)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%v, allocated %d KiB: %v", took, alloc>>10, err)
			assert.LessOrEqual(t, alloc, uint64(64<<20), "allocated %d MiB, want < 64 MiB", alloc>>20)
			assert.LessOrEqual(t, took, 5*time.Second, "took %v, want seconds at most", took)
		})
	}
}

// xlsxZipBomb returns ledger.xlsx with sheet1.xml replaced by the
// compressed 600 MiB part of zipbomb.docx, declared as 4 KiB (copied raw:
// compressing 600 MiB in the test would take seconds).
func xlsxZipBomb(t *testing.T) []byte {
	t.Helper()
	bomb, err := zip.OpenReader(sample("zipbomb.docx"))
	require.NoError(t, err)
	defer func() { assert.NoError(t, bomb.Close()) }()
	var comp []byte
	for _, f := range bomb.File {
		if f.Name == "word/document.xml" {
			rc, err := f.OpenRaw()
			require.NoError(t, err)
			comp, err = io.ReadAll(rc)
			require.NoError(t, err)
		}
	}
	zr, err := zip.OpenReader(sample("ledger.xlsx"))
	require.NoError(t, err)
	defer func() { assert.NoError(t, zr.Close()) }()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if f.Name == "xl/worksheets/sheet1.xml" {
			w, err := zw.CreateRaw(&zip.FileHeader{Name: f.Name, Method: zip.Deflate, CompressedSize64: uint64(len(comp)), UncompressedSize64: 4096})
			require.NoError(t, err)
			_, err = w.Write(comp)
			require.NoError(t, err)
			continue
		}
		require.NoError(t, zw.Copy(f))
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func TestExtract_missing_file_is_not_validation(t *testing.T) {
	_, err := office.Extract(context.Background(), filepath.Join(t.TempDir(), "gone.docx"), office.DOCX, office.Limits{})
	assert.ErrorIs(t, err, fs.ErrNotExist, "want an unclassified not-exist error")
	assert.NotErrorIs(t, err, failure.ErrValidation, "want an unclassified not-exist error")
}

func TestExtract_cancelled_context(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, k := range []office.Kind{office.DOCX, office.PPTX, office.XLSX} {
		t.Run(string(k), func(t *testing.T) {
			_, err := office.Extract(ctx, sample("report.docx"), k, office.Limits{})
			assert.ErrorIs(t, err, context.Canceled)
			assert.NotErrorIs(t, err, failure.ErrValidation, "want context.Canceled, not a validation error")
		})
	}
}

// TestExtract_concurrent runs every sample from several goroutines; with
// -race it proves Extract shares no state.
func TestExtract_concurrent(t *testing.T) {
	files := map[string]office.Kind{"report.docx": office.DOCX, "slides.pptx": office.PPTX, "ledger.xlsx": office.XLSX}
	want := map[string]string{}
	for f, k := range files {
		pages, err := office.Extract(context.Background(), sample(f), k, office.Limits{})
		require.NoError(t, err)
		require.NotEmpty(t, pages, f)
		want[f] = pages[0].Markdown
	}
	var wg sync.WaitGroup
	for range 4 {
		for f, k := range files {
			wg.Go(func() {
				pages, err := office.Extract(context.Background(), sample(f), k, office.Limits{})
				if assert.NoError(t, err, f) && assert.NotEmpty(t, pages, f) {
					assert.Equal(t, want[f], pages[0].Markdown, "%s: different output", f)
				}
			})
		}
	}
	wg.Wait()
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		name, mime string
		want       office.Kind
		ok         bool
	}{
		{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", office.DOCX, true},
		{"docm_mixed_case", "application/vnd.ms-word.document.macroEnabled.12", office.DOCX, true},
		{"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", office.PPTX, true},
		{"ppsx", "application/vnd.openxmlformats-officedocument.presentationml.slideshow", office.PPTX, true},
		{"xlsx_with_params", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; charset=binary", office.XLSX, true},
		{"xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12", office.XLSX, true},
		{"upper_case_spaces", "  APPLICATION/VND.OPENXMLFORMATS-OFFICEDOCUMENT.WORDPROCESSINGML.DOCUMENT ", office.DOCX, true},
		{"legacy_doc", "application/msword", "", false},
		{"odt", "application/vnd.oasis.opendocument.text", "", false},
		{"pdf", "application/pdf", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := office.KindOf(tc.mime)
			assert.Equal(t, tc.want, got, "KindOf(%q)", tc.mime)
			assert.Equal(t, tc.ok, ok, "KindOf(%q) ok", tc.mime)
		})
	}
}

func TestMostlyImages(t *testing.T) {
	pic := []office.Image{{Name: "scan.png"}}
	caption := "Scan\n\n<!-- image: scan.png -->"
	body := strings.Repeat("A paragraph of real body text. ", 10) + "\n\n<!-- image: chart.png -->"
	for _, tc := range []struct {
		name  string
		pages []office.Page
		want  bool
	}{
		{"no_pages", nil, false},
		{"text_only", []office.Page{{Markdown: body}}, false},
		{"picture_under_a_caption", []office.Page{{Markdown: caption, Images: pic}}, true},
		{"picture_within_body_text", []office.Page{{Markdown: body, Images: pic}}, false},
		{"half_picture_led_is_not_more_than_half", []office.Page{{Markdown: caption, Images: pic}, {Markdown: body}}, false},
		{"two_of_three_picture_led", []office.Page{{Markdown: caption, Images: pic}, {Markdown: body}, {Markdown: "", Images: pic}}, true},
		{"placeholder_text_is_not_counted", []office.Page{{Markdown: strings.Repeat("<!-- image: a-very-long-picture-name.png -->\n", 10), Images: pic}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, office.MostlyImages(tc.pages), "MostlyImages")
		})
	}
}

// TestMostlyImages_samples: the picture-led sample is recognised, the
// report (text with a chart) is not.
func TestMostlyImages_samples(t *testing.T) {
	for file, want := range map[string]bool{"scan.docx": true, "report.docx": false, "slides.pptx": false} {
		t.Run(file, func(t *testing.T) {
			kind := office.DOCX
			if strings.HasSuffix(file, ".pptx") {
				kind = office.PPTX
			}
			pages, err := office.Extract(context.Background(), sample(file), kind, office.Limits{})
			require.NoError(t, err)
			assert.Equal(t, want, office.MostlyImages(pages), "MostlyImages")
		})
	}
}
