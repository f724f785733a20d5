// Package textlayer decides whether a page's own text layer can be trusted
// instead of OCR, and turns it into markdown.
//
// MuPDF has no "has a text layer" API and no markdown output; it gives the
// page as positioned HTML (one <p> per line with top/left/line-height, spans
// with font sizes, images inline). From that, Analyze scores the text
// (enough characters for the page, no replacement or private-use glyphs, no
// GLYPH<…> or /G123 artefacts, sane word lengths) and measures how much of
// the page images cover: text over a page-sized image is an old, invisible
// OCR layer on a scan, which must be OCRed again, not trusted.
package textlayer

import (
	"encoding/base64"
	"html"
	"image"
	_ "image/jpeg" // image headers in page HTML
	_ "image/png"  // image headers in page HTML
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ocrflow/ocrflow/shared/document"
)

// Mode selects how text layers are used (TEXT_LAYER and the text_layer hint).
type Mode string

// Modes.
const (
	// ModeAuto trusts a text layer that scores well and OCRs the rest.
	ModeAuto Mode = "auto"
	// ModeOff always OCRs.
	ModeOff Mode = "off"
	// ModeOnly never OCRs: every page takes its text layer, however poor.
	ModeOnly Mode = "only"
)

// ParseMode parses a Mode, reporting false for an unknown value.
func ParseMode(s string) (Mode, bool) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeAuto, ModeOff, ModeOnly:
		return m, true
	}
	return "", false
}

// Analysis is what Analyze found on a page.
type Analysis struct {
	// Chars counts non-space characters of the text layer.
	Chars int
	// BadGlyphs counts replacement, private-use and control characters and
	// GLYPH<…> or /G123 artefacts.
	BadGlyphs int
	// ImageCoverage is the share of the page area covered by images (0–1).
	ImageCoverage float64
	// Score rates the text layer from 0 (useless) to 1 (clean).
	Score float64
	// Markdown is the text layer as markdown.
	Markdown string
	// WidthPt and HeightPt are the page's size in points, as given.
	WidthPt, HeightPt float64
	// Blocks are the markdown's blocks in reading order (headings, list
	// items, tables, paragraphs) with their boxes and lines in page
	// points. A line's right edge is estimated from its text and font
	// (MuPDF's HTML gives where a line starts, not where it ends).
	Blocks []document.Block
}

// Trusted reports whether the page should take its text layer in mode m.
func (a Analysis) Trusted(m Mode) bool {
	switch m {
	case ModeOnly:
		return true
	case ModeOff:
		return false
	}
	return a.Score >= MinScore
}

// MinScore is the score from which ModeAuto trusts a text layer.
const MinScore = 0.8

// line is one positioned line of the page HTML.
type line struct {
	top, left, height float64
	size              float64 // largest font size on the line
	bold              bool
	text              string
	width             float64 // estimated (textWidth)
}

// box is the line's box in page points.
func (l line) box() document.Box {
	return document.Box{l.left, l.top, l.left + l.width, l.top + math.Max(l.height, l.size)}
}

var (
	pRe      = regexp.MustCompile(`(?s)<p style="([^"]*)">(.*?)</p>`)
	spanRe   = regexp.MustCompile(`font-size:([0-9.]+)pt`)
	spanText = regexp.MustCompile(`(?s)<span style="([^"]*)">(.*?)</span>`)
	familyRe = regexp.MustCompile(`font-family:([^;"]+)`)
	tagRe    = regexp.MustCompile(`<[^>]*>`)
	styleNum = regexp.MustCompile(`(top|left|line-height):(-?[0-9.]+)pt`)
	imgRe    = regexp.MustCompile(`<img style="[^"]*matrix\(([^)]*)\)[^"]*" src="data:image/[a-z]+;base64,`)
	glyphRe  = regexp.MustCompile(`GLYPH<[^>]*>|/G[0-9]{2,}|\(cid:[0-9]+\)`)
)

// Analyze scores the text layer of one page from MuPDF's HTML for it and
// the page size in points.
func Analyze(pageHTML string, widthPt, heightPt float64) Analysis {
	lines := parseLines(pageHTML)
	var a Analysis
	var all strings.Builder
	for _, l := range lines {
		all.WriteString(l.text)
		all.WriteByte('\n')
	}
	text := all.String()
	for _, r := range text {
		if unicode.IsSpace(r) {
			continue
		}
		a.Chars++
		if r == utf8.RuneError || unicode.Is(unicode.Co, r) || unicode.IsControl(r) {
			a.BadGlyphs++
		}
	}
	a.BadGlyphs += len(glyphRe.FindAllStringIndex(text, -1))
	a.ImageCoverage = imageCoverage(pageHTML, widthPt*heightPt)
	a.Score = score(a, text)
	a.WidthPt, a.HeightPt = widthPt, heightPt
	a.Markdown, a.Blocks = markdown(lines)
	for i := range a.Blocks {
		b := a.Blocks[i].BBox.Clamp(widthPt, heightPt)
		a.Blocks[i].BBox = &b
		for j := range a.Blocks[i].Lines {
			a.Blocks[i].Lines[j].BBox = a.Blocks[i].Lines[j].BBox.Clamp(widthPt, heightPt)
		}
	}
	return a
}

func score(a Analysis, text string) float64 {
	if a.Chars == 0 {
		return 0
	}
	s := 1.0
	// Artefacts: every percent of bad glyphs costs a tenth.
	s -= 10 * float64(a.BadGlyphs) / float64(a.Chars)
	// An invisible OCR layer over a scan: text plus a page-sized image.
	if a.ImageCoverage >= 0.5 {
		s -= 0.6
	}
	// Word lengths: prose averages 4–6 letters; runs of glued words or
	// single letters mean a broken layer.
	words := strings.Fields(text)
	long, total := 0, 0
	for _, w := range words {
		n := utf8.RuneCountInString(w)
		total += n
		if n > 25 {
			long++
		}
	}
	if len(words) > 0 {
		mean := float64(total) / float64(len(words))
		if mean < 2 || mean > 15 {
			s -= 0.5
		}
		s -= 5 * float64(long) / float64(len(words))
	}
	// Too little text for the page: a few characters on a page with a
	// large image are a caption, not the page.
	if a.Chars < 40 && a.ImageCoverage > 0.2 {
		s -= 0.5
	}
	return math.Max(0, math.Min(1, s))
}

func parseLines(pageHTML string) []line {
	var out []line
	for _, m := range pRe.FindAllStringSubmatch(pageHTML, -1) {
		var l line
		for _, n := range styleNum.FindAllStringSubmatch(m[1], -1) {
			v, _ := strconv.ParseFloat(n[2], 64)
			switch n[1] {
			case "top":
				l.top = v
			case "left":
				l.left = v
			case "line-height":
				l.height = v
			}
		}
		for _, s := range spanRe.FindAllStringSubmatch(m[2], -1) {
			if v, _ := strconv.ParseFloat(s[1], 64); v > l.size {
				l.size = v
			}
		}
		l.bold = strings.Contains(m[2], "<b>")
		l.text = strings.TrimSpace(html.UnescapeString(tagRe.ReplaceAllString(m[2], "")))
		if l.text == "" {
			continue
		}
		l.width = lineWidth(m[2], l)
		out = append(out, l)
	}
	return out
}

// lineWidth estimates the width of a line from its spans' text, font
// sizes and families.
func lineWidth(inner string, l line) float64 {
	w := 0.0
	for _, loc := range spanText.FindAllStringSubmatchIndex(inner, -1) {
		style, text := inner[loc[2]:loc[3]], inner[loc[4]:loc[5]]
		size := l.size
		if m := spanRe.FindStringSubmatch(style); m != nil {
			size, _ = strconv.ParseFloat(m[1], 64)
		}
		family := ""
		if m := familyRe.FindStringSubmatch(style); m != nil {
			family = m[1]
		}
		// MuPDF wraps a bold span in <b>…</b>.
		before := inner[:loc[0]]
		bold := strings.Count(before, "<b>") > strings.Count(before, "</b>")
		w += textWidth(html.UnescapeString(tagRe.ReplaceAllString(text, "")), size, family, bold)
	}
	if w == 0 {
		w = textWidth(l.text, math.Max(l.size, l.height), "", l.bold)
	}
	return w
}

func imageCoverage(pageHTML string, areaPt float64) float64 {
	if areaPt <= 0 {
		return 0
	}
	covered := 0.0
	for _, loc := range imgRe.FindAllStringSubmatchIndex(pageHTML, -1) {
		matrix := pageHTML[loc[2]:loc[3]]
		// The image header is near the start of the data: 8 KiB of base64
		// is plenty to read its dimensions.
		data := pageHTML[loc[1]:min(len(pageHTML), loc[1]+8192)]
		if end := strings.IndexByte(data, '"'); end >= 0 {
			data = data[:end]
		}
		parts := strings.Split(matrix, ",")
		if len(parts) < 4 {
			continue
		}
		a, _ := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
		d, _ := strconv.ParseFloat(strings.TrimSpace(parts[3]), 64)
		raw, err := base64.StdEncoding.DecodeString(trimB64(data))
		if err != nil && len(raw) == 0 {
			continue
		}
		cfg, _, err := image.DecodeConfig(strings.NewReader(string(raw)))
		if err != nil {
			continue
		}
		// The HTML is in CSS pixels: 1 px = 0.75 pt.
		w := math.Abs(a) * float64(cfg.Width) * 0.75
		h := math.Abs(d) * float64(cfg.Height) * 0.75
		covered += w * h
	}
	return math.Min(1, covered/areaPt)
}

// trimB64 cuts a base64 prefix to a whole number of 4-byte groups.
func trimB64(s string) string {
	s = strings.ReplaceAll(s, "\n", "")
	return s[:len(s)/4*4]
}

// markdown rebuilds paragraphs, headings, list items and simple tables
// from positioned lines: a vertical gap larger than the line spacing starts
// a paragraph; a line set in a font clearly larger than the body is a
// heading (#, ## or ### by size rank); a line starting with a bullet or
// number is a list item; short lines in aligned columns over two or more
// rows are a table (findTables), written where its first line occurs.
// Each heading, list item, table and paragraph is also a block, with the
// box of its lines.
func markdown(lines []line) (string, []document.Block) {
	if len(lines) == 0 {
		return "", nil
	}
	lines = joinMarkers(lines)
	body := bodySize(lines)
	levels := headingLevels(lines, body)
	inTable := map[int]*table{}
	tables := findTables(lines, body)
	for k := range tables {
		for i := range tables[k].members {
			inTable[i] = &tables[k]
		}
	}
	var b strings.Builder
	var blocks []document.Block
	emit := func(label, text string, ls ...line) {
		blk := document.Block{Label: label, Text: text}
		var box document.Box
		for k, l := range ls {
			if k == 0 {
				box = l.box()
			} else {
				box = box.Union(l.box())
			}
			blk.Lines = append(blk.Lines, document.Line{BBox: l.box(), Text: l.text})
		}
		blk.BBox = &box
		blocks = append(blocks, blk)
	}
	var para []string
	var paraLines []line
	inList := false
	flush := func() {
		if inList {
			b.WriteString("\n") // a list ends before anything else starts
			inList = false
		}
		if len(para) > 0 {
			text := strings.Join(para, " ")
			b.WriteString(text)
			b.WriteString("\n\n")
			emit(document.LabelText, text, paraLines...)
			para, paraLines = para[:0], paraLines[:0]
		}
	}
	prev := line{}
	for i, l := range lines {
		if t, ok := inTable[i]; ok {
			if i == t.first {
				flush()
				b.WriteString(t.md + "\n\n")
				emit(document.LabelTable, t.md, t.lines(lines)...)
				prev = l
			}
			continue
		}
		if lvl, ok := levels[l.size]; ok {
			flush()
			text := strings.Repeat("#", lvl) + " " + l.text
			b.WriteString(text + "\n\n")
			emit(document.LabelTitle, text, l)
			prev = l
			continue
		}
		if item, ok := listItem(l.text); ok {
			if !inList {
				flush()
			}
			b.WriteString(item + "\n")
			emit(document.LabelListItem, item, l)
			inList = true
			prev = l
			continue
		}
		gap := l.top - prev.top
		if inList || (i > 0 && (gap > 1.6*math.Max(prev.height, 1) || gap < 0)) {
			flush()
		}
		para = append(para, l.text)
		paraLines = append(paraLines, l)
		prev = l
	}
	flush()
	return strings.TrimSpace(b.String()) + "\n", blocks
}

func bodySize(lines []line) float64 {
	count := map[float64]int{}
	for _, l := range lines {
		count[l.size] += len(l.text)
	}
	best, n := 0.0, -1
	for s, c := range count {
		if c > n {
			best, n = s, c
		}
	}
	return best
}

func headingLevels(lines []line, body float64) map[float64]int {
	var sizes []float64
	seen := map[float64]bool{}
	for _, l := range lines {
		if l.size >= body*1.2 && !seen[l.size] && len(l.text) < 200 {
			seen[l.size] = true
			sizes = append(sizes, l.size)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(sizes)))
	levels := map[float64]int{}
	for i, s := range sizes {
		levels[s] = min(i+1, 3)
	}
	return levels
}

var numbered = regexp.MustCompile(`^(\d{1,3})[.)]\s+(.*)$`)

func listItem(text string) (string, bool) {
	for _, bullet := range []string{"•", "◦", "▪", "‣", "-", "–", "*"} {
		if rest, ok := strings.CutPrefix(text, bullet+" "); ok {
			return "- " + strings.TrimSpace(rest), true
		}
	}
	if m := numbered.FindStringSubmatch(text); m != nil {
		return m[1] + ". " + m[2], true
	}
	return "", false
}
