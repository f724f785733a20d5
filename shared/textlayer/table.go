package textlayer

import (
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Table detection thresholds, in points unless stated.
const (
	// rowTolerance: lines whose tops differ by at most this share a row.
	rowTolerance = 2.0
	// columnTolerance: cells whose left edges differ by at most this share
	// a column.
	columnTolerance = 4.0
	// maxCellRunes: a longer line is prose, never a table cell. It keeps
	// two-column text (lines side by side, like cells) out of tables.
	maxCellRunes = 40
	// minTableRows: rows with two or more cells a table needs.
	minTableRows = 2
	// minFill: the share of the grid's cells that must hold text. Cells
	// that do not line up (right-aligned numbers, free layout) spread over
	// more columns than any row fills, and such a grid is left as text.
	minFill = 0.75
)

// table is a run of positioned lines that form a grid.
type table struct {
	first   int          // index of its first line in page order
	members map[int]bool // indices of its lines
	md      string       // the markdown table
}

// lines returns the table's lines in page order.
func (t table) lines(all []line) []line {
	out := make([]line, 0, len(t.members))
	for i, l := range all {
		if t.members[i] {
			out = append(out, l)
		}
	}
	return out
}

// findTables finds simple tables among the lines: two or more consecutive
// rows (lines sharing a top) of two or more short cells whose left edges
// all fall on the columns of the first row. A single line below a row, under any column but
// the first, continues that row's cell (a wrapped cell). Headings are
// never cells.
func findTables(lines []line, body float64) []table {
	rows := rowsOf(lines)
	var out []table
	for start := 0; start < len(rows); {
		if !cellRow(lines, rows[start], body) {
			start++
			continue
		}
		cols := lefts(lines, rows[start])
		end, multi := start+1, 1
		for end < len(rows) {
			r := rows[end]
			if cellRow(lines, r, body) && aligned(lines, r, cols) {
				end, multi = end+1, multi+1
				continue
			}
			if continuation(lines, r, rows[end-1], cols, body) {
				end++
				continue
			}
			break
		}
		if multi >= minTableRows {
			if t, ok := buildTable(lines, rows[start:end], cols); ok {
				out = append(out, t)
			}
		}
		start = end
	}
	return out
}

// rowsOf groups line indices into rows by top, top to bottom, each row
// sorted left to right.
func rowsOf(lines []line) [][]int {
	idx := make([]int, len(lines))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lines[idx[a]].top < lines[idx[b]].top })
	var rows [][]int
	for _, i := range idx {
		if n := len(rows); n > 0 && math.Abs(lines[i].top-lines[rows[n-1][0]].top) <= rowTolerance {
			rows[n-1] = append(rows[n-1], i)
			continue
		}
		rows = append(rows, []int{i})
	}
	for _, r := range rows {
		sort.SliceStable(r, func(a, b int) bool { return lines[r[a]].left < lines[r[b]].left })
	}
	return rows
}

// cellRow reports whether row r has two or more short, body-sized cells in
// distinct columns.
func cellRow(lines []line, r []int, body float64) bool {
	if len(r) < 2 {
		return false
	}
	for k, i := range r {
		l := lines[i]
		if !cellLine(l, body) {
			return false
		}
		if k > 0 && l.left-lines[r[k-1]].left <= columnTolerance {
			return false
		}
	}
	return true
}

func cellLine(l line, body float64) bool {
	return utf8.RuneCountInString(l.text) <= maxCellRunes && l.size < body*1.2
}

// continuation reports whether r is one short line just below prev, under
// a column other than the first: the wrapped rest of a cell.
func continuation(lines []line, r, prev []int, cols []float64, body float64) bool {
	if len(r) != 1 || !cellLine(lines[r[0]], body) {
		return false
	}
	l := lines[r[0]]
	c := column(cols, l.left)
	gap := l.top - lines[prev[0]].top
	return c > 0 && gap > 0 && gap <= 1.6*math.Max(lines[prev[0]].height, 1)
}

func lefts(lines []line, r []int) []float64 {
	out := make([]float64, len(r))
	for k, i := range r {
		out[k] = lines[i].left
	}
	return out
}

// aligned reports whether every cell of row r starts on one of the
// columns the table's first row set.
func aligned(lines []line, r []int, cols []float64) bool {
	for _, i := range r {
		if column(cols, lines[i].left) < 0 {
			return false
		}
	}
	return true
}

// column returns the index of the column at left, or -1.
func column(cols []float64, left float64) int {
	for k, c := range cols {
		if math.Abs(c-left) <= columnTolerance {
			return k
		}
	}
	return -1
}

// buildTable lays the rows out on the columns; the first row is the
// header. A continuation line joins the cell above it. It reports false
// when the grid is too sparse to be a table (minFill).
func buildTable(lines []line, rows [][]int, cols []float64) (table, bool) {
	t := table{first: len(lines), members: map[int]bool{}}
	var grid [][]string
	for _, r := range rows {
		if len(r) == 1 && len(grid) > 0 {
			c := column(cols, lines[r[0]].left)
			row := grid[len(grid)-1]
			row[c] = strings.TrimSpace(row[c] + " " + lines[r[0]].text)
		} else {
			row := make([]string, len(cols))
			for _, i := range r {
				if c := column(cols, lines[i].left); c >= 0 {
					row[c] = strings.TrimSpace(row[c] + " " + lines[i].text)
				}
			}
			grid = append(grid, row)
		}
		for _, i := range r {
			t.members[i] = true
			t.first = min(t.first, i)
		}
	}
	filled := 0
	for _, row := range grid {
		for _, cell := range row {
			if cell != "" {
				filled++
			}
		}
	}
	if float64(filled) < minFill*float64(len(grid)*len(cols)) {
		return t, false
	}
	var b strings.Builder
	for k, row := range grid {
		b.WriteString("|")
		for _, cell := range row {
			b.WriteString(" " + strings.ReplaceAll(cell, "|", `\|`) + " |")
		}
		b.WriteString("\n")
		if k == 0 {
			b.WriteString("|" + strings.Repeat(" --- |", len(row)) + "\n")
		}
	}
	t.md = strings.TrimSuffix(b.String(), "\n")
	return t, true
}

// numberMarker matches a list number standing alone: "1.", "2)", "(a)".
var numberMarker = regexp.MustCompile(`^\(?(?:[0-9]{1,3}|[a-z])[.)]$`)

// markerOnly reports whether a line is nothing but a list marker: a number,
// or one bullet character — a symbol or punctuation mark, the letter "o"
// (a deeper level in Word), or a private-use glyph (bullets from the Symbol
// and Wingdings fonts, such as U+F0B7, have no Unicode meaning of their
// own). Word processors often set the marker apart from its text.
func markerOnly(text string) bool {
	if numberMarker.MatchString(text) {
		return true
	}
	r, n := utf8.DecodeRuneInString(text)
	if n == 0 || n != len(text) || strings.ContainsRune(".,:;", r) {
		return false
	}
	return r == 'o' || unicode.Is(unicode.Co, r) || unicode.IsSymbol(r) || unicode.IsPunct(r)
}

// joinMarkers joins each marker-only line to the text to its right on the
// same row, so list items set as two positioned lines read as one
// ("• Revenue up") instead of a two-column table.
func joinMarkers(lines []line) []line {
	// In a row sorted left to right, a marker's text is the next line.
	partner := map[int]int{}
	for _, r := range rowsOf(lines) {
		for k := 0; k+1 < len(r); k++ {
			i, j := r[k], r[k+1]
			if j > i && markerOnly(lines[i].text) && lines[j].left > lines[i].left {
				partner[i] = j
				k++ // the text line is taken
			}
		}
	}
	if len(partner) == 0 {
		return lines
	}
	taken := map[int]bool{}
	for _, j := range partner {
		taken[j] = true
	}
	out := make([]line, 0, len(lines)-len(partner))
	for i, l := range lines {
		if taken[i] {
			continue
		}
		if j, ok := partner[i]; ok {
			marker := l.text
			if !strings.ContainsAny(marker[len(marker)-1:], ".)") {
				marker = "•"
			}
			l.text = marker + " " + lines[j].text
			l.width = lines[j].left + lines[j].width - l.left
			l.size = max(l.size, lines[j].size)
			l.bold = lines[j].bold
		}
		out = append(out, l)
	}
	return out
}
