package office_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	"github.com/ocrflow/ocrflow/shared/office"
)

// BenchmarkExtract measures whole-file extraction per kind: the small
// samples, plus a 50× report.docx (about 60 pages) and a 600-row ledger
// comparable to the LibreOffice figures in docs/performance.md.
//
//	go test -run '^$' -bench Extract -benchmem ./shared/office/
func BenchmarkExtract(b *testing.B) {
	dir := b.TempDir()
	for _, bc := range []struct {
		name string
		path string
		kind office.Kind
	}{
		{"docx", sample("report.docx"), office.DOCX},
		{"docx_x50", bigDocx(b, dir, 50), office.DOCX},
		{"pptx", sample("slides.pptx"), office.PPTX},
		{"xlsx", sample("ledger.xlsx"), office.XLSX},
		{"xlsx_600rows", bigXlsx(b, dir, 600), office.XLSX},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pages := 0
			for b.Loop() {
				ps, err := office.Extract(context.Background(), bc.path, bc.kind, office.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				pages = len(ps)
			}
			b.ReportMetric(float64(pages), "pages/op")
		})
	}
}

// bigDocx repeats report.docx's body n times.
func bigDocx(b *testing.B, dir string, n int) string {
	zr, err := zip.OpenReader(sample("report.docx"))
	require.NoError(b, err)
	defer func() { require.NoError(b, zr.Close()) }()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if f.Name != "word/document.xml" {
			require.NoError(b, zw.Copy(f))
			continue
		}
		rc, err := f.Open()
		require.NoError(b, err)
		doc, err := io.ReadAll(rc)
		require.NoError(b, err)
		require.NoError(b, rc.Close())
		s := string(doc)
		start := strings.Index(s, "<w:body>") + len("<w:body>")
		end := strings.LastIndex(s, "<w:sectPr>")
		w, err := zw.Create(f.Name)
		require.NoError(b, err)
		_, err = io.WriteString(w, s[:start]+strings.Repeat(s[start:end], n)+s[end:])
		require.NoError(b, err)
	}
	require.NoError(b, zw.Close())
	return writeTemp(b, "big.docx", buf.Bytes())
}

// bigXlsx writes a rows × 5 ledger with a number format and formulas.
func bigXlsx(b *testing.B, dir string, rows int) string {
	f := excelize.NewFile()
	defer func() { require.NoError(b, f.Close()) }()
	style, err := f.NewStyle(&excelize.Style{NumFmt: 4})
	require.NoError(b, err)
	require.NoError(b, f.SetSheetRow("Sheet1", "A1", &[]any{"Date", "Item", "Qty", "Unit price", "Total"}))
	for r := 2; r <= rows+1; r++ {
		require.NoError(b, f.SetSheetRow("Sheet1", fmt.Sprintf("A%d", r), &[]any{45658 + r, fmt.Sprintf("Item %d", r), r % 7, float64(r) * 1.25}))
		require.NoError(b, f.SetCellFormula("Sheet1", fmt.Sprintf("E%d", r), fmt.Sprintf("C%d*D%d", r, r)))
		require.NoError(b, f.SetCellStyle("Sheet1", fmt.Sprintf("D%d", r), fmt.Sprintf("E%d", r), style))
	}
	path := filepath.Join(dir, "big.xlsx")
	require.NoError(b, f.SaveAs(path))
	return path
}
