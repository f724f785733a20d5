package office

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"errors"
	"slices"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// XLSX cell values come from excelize, which applies number formats and
// returns formulas' cached values. excelize reads every part into memory
// at its declared size and ignores read errors, so the container guards
// run first and every entry is inflated once through the budget (real size
// and CRC checked) before excelize sees the file. Pictures are found by
// reading the drawing parts directly, because excelize's picture API loads
// and recalculates whole worksheets.

// sheetPicture is a picture anchored on a sheet.
type sheetPicture struct {
	row, col int
	img      *Image
}

func extractXLSX(ctx context.Context, path string, lim Limits) (pages []Page, err error) {
	a, err := openArchive(ctx, path, XLSX, lim)
	if err != nil {
		return nil, err
	}
	defer a.close()
	wb, err := a.mainPart("xl/workbook.xml", "workbook", "an Excel workbook")
	if err != nil {
		return nil, err
	}
	if err := a.verifyAll(); err != nil {
		return nil, err
	}
	// The pass above proved the real total is within the budget; the
	// pictures below re-read some of the same bytes.
	a.used = 0
	pictures, err := xlsxPictures(a, wb)
	if err != nil {
		return nil, err
	}

	// excelize is a large parser fed hostile input: a panic in it is a
	// problem of the file, and must not take the process down.
	defer func() {
		if r := recover(); r != nil {
			pages, err = nil, failure.Validation("the xlsx cannot be read (spreadsheet parser failed: %v)", r)
		}
	}()
	f, err := excelize.OpenFile(path, excelize.Options{
		UnzipSizeLimit:    lim.MaxUncompressed,
		UnzipXMLSizeLimit: min(lim.MaxUncompressed, excelize.StreamChunkSize),
	})
	switch {
	case errors.Is(err, zip.ErrFormat):
		// archive/zip's answer to a part longer than its header declares.
		return nil, failure.Validation("the xlsx is damaged or a part expands beyond its declared size (zip bomb guard)")
	case err != nil:
		return nil, failure.Validation("the xlsx is damaged or is not an Excel workbook: %v", err)
	}
	// Read-only: Close only removes excelize's temporary files, and a
	// leftover one loses nothing.
	defer func() { _ = f.Close() }()

	for _, name := range f.GetSheetList() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows, err := sheetRows(ctx, f, name, lim.MaxSheetCells)
		if err != nil {
			return nil, err
		}
		title := "# " + name
		if visible, _ := f.GetSheetVisible(name); !visible {
			title += " (hidden)"
		}
		var pb pageBuilder
		pb.add(title, false)
		pb.add(renderTable(rows), false)
		for _, pic := range pictures[name] {
			pb.add(placeholder(pic.img.Name), false)
			pb.images.add(pic.img)
		}
		pages = append(pages, pb.page())
	}
	if len(pages) == 0 {
		pages = []Page{{}}
	}
	return pages, nil
}

// sheetRows reads a sheet through excelize's row iterator and returns its
// table cells (escaped), without empty rows and columns at the edges. It
// stops with a validation error as soon as the table would exceed maxCells.
func sheetRows(ctx context.Context, f *excelize.File, sheet string, maxCells int) ([][]string, error) {
	it, err := f.Rows(sheet)
	if err != nil {
		return nil, failure.Validation("the xlsx sheet %q cannot be read: %v", sheet, err)
	}
	defer func() { _ = it.Close() }() // read-only: nothing is lost
	var (
		grid       [][]string
		pending    int // empty rows since the last non-empty one
		minC, maxC = -1, -1
	)
	for n := 0; it.Next(); n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		cols, err := it.Columns()
		if err != nil {
			return nil, failure.Validation("the xlsx sheet %q cannot be read: %v", sheet, err)
		}
		lo, hi := -1, -1
		for i, c := range cols {
			if strings.TrimSpace(c) != "" {
				if lo < 0 {
					lo = i
				}
				hi = i
			}
		}
		if lo < 0 {
			if len(grid) > 0 {
				pending++
			}
			continue
		}
		if minC < 0 || lo < minC {
			minC = lo
		}
		maxC = max(maxC, hi)
		if rowsN := int64(len(grid) + pending + 1); rowsN*int64(maxC-minC+1) > int64(maxCells) {
			return nil, failure.Validation("the xlsx sheet %q has more than %d cells, the limit per sheet", sheet, maxCells)
		}
		for ; pending > 0; pending-- {
			grid = append(grid, nil)
		}
		grid = append(grid, cols[:hi+1])
	}
	if err := it.Error(); err != nil {
		return nil, failure.Validation("the xlsx sheet %q cannot be read: %v", sheet, err)
	}
	for i, r := range grid {
		cells := make([]string, maxC-minC+1)
		for j := minC; j < len(r); j++ {
			cells[j-minC] = cellText(strings.ReplaceAll(r[j], "\r\n", "\n"))
		}
		grid[i] = cells
	}
	return grid, nil
}

// xlsxPictures finds the raster pictures anchored on each sheet, by sheet
// name, ordered by anchor row then column.
func xlsxPictures(a *archive, workbook string) (map[string][]sheetPicture, error) {
	wbRels, err := a.rels(workbook)
	if err != nil {
		return nil, err
	}
	type sheetRef struct{ name, rid string }
	var sheets []sheetRef
	p, err := a.xml(workbook, maxAuxPart)
	if err != nil {
		return nil, err
	}
	err = p.stream(func(se xml.StartElement) error {
		if se.Name.Local == "sheet" {
			sheets = append(sheets, sheetRef{attr(se, "name"), nsAttr(se, "id")})
		}
		return nil
	}, func(xml.EndElement) {})
	p.close()
	if err != nil {
		return nil, err
	}

	out := map[string][]sheetPicture{}
	for _, sh := range sheets {
		r, ok := wbRels[sh.rid]
		if !ok || r.external || !a.has(r.target) {
			continue
		}
		sheetRels, err := a.rels(r.target)
		if err != nil {
			return nil, err
		}
		for _, id := range sortedKeys(sheetRels) {
			dr := sheetRels[id]
			if dr.external || !strings.HasSuffix(dr.typ, "/drawing") || !a.has(dr.target) {
				continue
			}
			pics, err := drawingPictures(a, dr.target)
			if err != nil {
				return nil, err
			}
			out[sh.name] = append(out[sh.name], pics...)
		}
		slices.SortStableFunc(out[sh.name], func(x, y sheetPicture) int {
			if x.row != y.row {
				return x.row - y.row
			}
			return x.col - y.col
		})
	}
	return out, nil
}

// drawingPictures reads the pictures of one spreadsheet drawing part.
func drawingPictures(a *archive, part string) ([]sheetPicture, error) {
	rels, err := a.rels(part)
	if err != nil {
		return nil, err
	}
	p, err := a.xml(part, maxAuxPart)
	if err != nil {
		return nil, err
	}
	defer p.close()
	var (
		out      []sheetPicture
		row, col int
		inFrom   bool
		inPic    int
	)
	err = p.stream(func(t xml.StartElement) error {
		switch t.Name.Local {
		case "twoCellAnchor", "oneCellAnchor", "absoluteAnchor":
			row, col = 0, 0
		case "from":
			inFrom = true
		case "row", "col":
			if !inFrom {
				return nil
			}
			s, err := p.text()
			if err != nil {
				return err
			}
			if t.Name.Local == "row" {
				row = atoi(s, 0)
			} else {
				col = atoi(s, 0)
			}
		case "pic":
			inPic++
		case "blip":
			r, ok := rels[nsAttr(t, "embed")]
			if inPic == 0 || !ok || r.external {
				return nil
			}
			img, err := a.image(r.target)
			if err != nil {
				return err
			}
			if img != nil {
				out = append(out, sheetPicture{row, col, img})
			}
		}
		return nil
	}, func(t xml.EndElement) {
		switch t.Name.Local {
		case "from":
			inFrom = false
		case "pic":
			inPic = max(inPic-1, 0)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
