package engine

import (
	"math"
	"strconv"
	"strings"
)

// tsvHeader opens tesseract's TSV output.
const tsvHeader = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"

// tsvRow is one row of tesseract's TSV: a page (level 1), block (2),
// paragraph (3), line (4) or word (5) with its box in pixels.
type tsvRow struct {
	level, block, par, line int
	box                     [4]int // x1, y1, x2, y2
	conf                    float64
	text                    string
}

// splitTSV splits the output of one tesseract run with the txt and tsv
// renderers into the plain text and the TSV rows, whichever order the
// renderers wrote them in.
func splitTSV(out string) (text string, rows []tsvRow) {
	lines := strings.Split(out, "\n")
	head := -1
	for i, l := range lines {
		if strings.TrimRight(l, "\r") == tsvHeader {
			head = i
			break
		}
	}
	if head < 0 {
		return out, nil
	}
	end := head + 1
	for ; end < len(lines); end++ {
		r, ok := parseTSVRow(strings.TrimRight(lines[end], "\r"))
		if !ok {
			break
		}
		rows = append(rows, r)
	}
	rest := append(append([]string{}, lines[:head]...), lines[end:]...)
	return strings.Join(rest, "\n"), rows
}

// parseTSVRow parses one TSV data row.
func parseTSVRow(l string) (tsvRow, bool) {
	f := strings.Split(l, "\t")
	if len(f) != 12 {
		return tsvRow{}, false
	}
	n := make([]int, 10)
	for i := range 10 {
		v, err := strconv.Atoi(f[i])
		if err != nil {
			return tsvRow{}, false
		}
		n[i] = v
	}
	conf, err := strconv.ParseFloat(f[10], 64)
	if err != nil || n[0] < 1 || n[0] > 5 {
		return tsvRow{}, false
	}
	return tsvRow{
		level: n[0], block: n[2], par: n[3], line: n[4],
		box:  [4]int{n[6], n[7], n[6] + n[8], n[7] + n[9]},
		conf: conf, text: f[11],
	}, true
}

// tsvBlocks turns the TSV rows into one block per paragraph with text:
// its box, its lines (box, words, mean confidence) and its words' mean
// confidence (0–1). md is the page markdown (Paragraphs of the plain
// text): when its paragraphs pair up with the TSV's, a block's text and
// span are its markdown paragraph's; otherwise its words joined.
func tsvBlocks(rows []tsvRow, md string) []Block {
	type acc struct {
		sum float64
		n   int
	}
	mean := func(a acc) *float64 {
		if a.n == 0 {
			return nil
		}
		v := math.Round(a.sum/float64(a.n)*100) / 10000 // 0–1, four decimals
		return &v
	}
	var blocks []Block
	var bconf, lconf acc
	var words []string
	var cur *Block
	var curLine *Line
	endLine := func() {
		if curLine != nil && len(words) > 0 {
			curLine.Text = strings.Join(words, " ")
			curLine.Confidence = mean(lconf)
			cur.Lines = append(cur.Lines, *curLine)
		}
		curLine, words, lconf = nil, nil, acc{}
	}
	endPar := func() {
		endLine()
		if cur != nil && len(cur.Lines) > 0 {
			texts := make([]string, len(cur.Lines))
			for i, l := range cur.Lines {
				texts[i] = l.Text
			}
			cur.Text = strings.Join(texts, " ")
			cur.Confidence = mean(bconf)
			blocks = append(blocks, *cur)
		}
		cur, bconf = nil, acc{}
	}
	for _, r := range rows {
		switch r.level {
		case 3:
			endPar()
			cur = &Block{Label: "text", Boxes: [][4]int{r.box}}
		case 4:
			if cur == nil {
				continue
			}
			endLine()
			curLine = &Line{Box: r.box}
		case 5:
			w := strings.TrimSpace(r.text)
			if curLine == nil || w == "" {
				continue
			}
			words = append(words, w)
			if r.conf >= 0 {
				lconf.sum, lconf.n = lconf.sum+r.conf, lconf.n+1
				bconf.sum, bconf.n = bconf.sum+r.conf, bconf.n+1
			}
		}
	}
	endPar()
	spans(blocks, md)
	return blocks
}

// spans gives each block the text and byte span of its paragraph in md,
// when md has exactly one paragraph per block.
func spans(blocks []Block, md string) {
	paras := strings.Split(md, "\n\n")
	if md == "" || len(paras) != len(blocks) {
		return
	}
	at := 0
	for i, p := range paras {
		blocks[i].Text, blocks[i].Start, blocks[i].End = p, at, at+len(p)
		at += len(p) + 2
	}
}
