package searchpdf

import (
	"html"
	"math"
	"regexp"
	"strings"

	"github.com/ocrflow/ocrflow/shared/document"
)

// LinesOf returns the text lines to lay over a page from its layout, in
// reading order:
//   - a block with lines (tesseract, the text layer) gives its lines;
//   - a block with a box but no lines (DeepSeek-OCR grounding) is split
//     into as many lines as its box and text suggest, the words spread
//     evenly over them, each line a horizontal slice of the box;
//   - blocks without a box (engines that report no layout) are stacked
//     down the page inside a margin, so their text is still found and
//     selected in roughly the right place.
//
// The text is the block's markdown made plain: no heading or list
// markers, table pipes or HTML tags.
func LinesOf(l document.Layout) []Line {
	var out []Line
	var loose []string // text of the blocks without a box
	for _, b := range l.Blocks {
		switch {
		case len(b.Lines) > 0:
			for _, ln := range b.Lines {
				if t := Plain(ln.Text); t != "" {
					out = append(out, Line{Box: ln.BBox, Text: t})
				}
			}
		case b.BBox != nil:
			out = append(out, split(*b.BBox, Plain(b.Text))...)
		default:
			if t := Plain(b.Text); t != "" {
				loose = append(loose, t)
			}
		}
	}
	if len(loose) > 0 && l.WidthPt > 0 && l.HeightPt > 0 {
		out = append(out, stack(loose, l.WidthPt, l.HeightPt)...)
	}
	return out
}

// split divides box into lines for text: k lines of height h such that the
// text, at about half an em per character, fills the box's width —
// k = √(chars · 0.5 · height / width) — but never more lines than words,
// and the explicit line breaks of the text when there are more of them.
func split(box document.Box, text string) []Line {
	if text == "" || box.Width() <= 0 || box.Height() <= 0 {
		return nil
	}
	var rows []string
	if explicit := strings.Split(text, "\n"); len(explicit) > 1 {
		rows = explicit
	} else {
		words := strings.Fields(text)
		chars := float64(len([]rune(text)))
		k := int(math.Round(math.Sqrt(chars * 0.5 * box.Height() / box.Width())))
		k = max(1, min(k, len(words)))
		rows = spread(words, k)
	}
	h := box.Height() / float64(len(rows))
	out := make([]Line, 0, len(rows))
	for i, r := range rows {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		y := box[1] + float64(i)*h
		out = append(out, Line{Box: document.Box{box[0], y, box[2], y + h}, Text: r})
	}
	return out
}

// spread puts words on k lines of about equal length in characters: each
// break falls at the word boundary nearest its share of the text.
func spread(words []string, k int) []string {
	cum := make([]int, len(words)+1) // characters before word i
	for i, w := range words {
		cum[i+1] = cum[i] + len([]rune(w)) + 1
	}
	total := float64(cum[len(words)])
	rows := make([]string, 0, k)
	from := 0
	for j := 1; j < k; j++ {
		target := total * float64(j) / float64(k)
		best := from + 1
		for i := from + 1; i < len(words)-(k-j)+1; i++ {
			if math.Abs(float64(cum[i])-target) < math.Abs(float64(cum[best])-target) {
				best = i
			}
		}
		rows = append(rows, strings.Join(words[from:best], " "))
		from = best
	}
	return append(rows, strings.Join(words[from:], " "))
}

// Page margin and line height of text stacked without boxes.
const (
	stackMargin = 1.0 / 12
	stackLine   = 14.0 // points, at most
	stackChars  = 90   // characters per stacked line, at most
)

// stack lays texts out down the page inside its margins.
func stack(texts []string, w, h float64) []Line {
	var rows []string
	for _, t := range texts {
		for _, para := range strings.Split(t, "\n") {
			rows = append(rows, wrap(strings.Fields(para), stackChars)...)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	left, top := w*stackMargin, h*stackMargin
	lh := math.Min(stackLine, h*(1-2*stackMargin)/float64(len(rows)))
	out := make([]Line, 0, len(rows))
	for i, r := range rows {
		width := math.Min(w*(1-2*stackMargin), float64(len([]rune(r)))*lh*0.5)
		y := top + float64(i)*lh
		out = append(out, Line{Box: document.Box{left, y, left + width, y + lh}, Text: r})
	}
	return out
}

// wrap joins words into lines of at most n characters.
func wrap(words []string, n int) []string {
	var out []string
	var cur strings.Builder
	for _, w := range words {
		if cur.Len() > 0 && cur.Len()+1+len(w) > n {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

var (
	cellBreak   = regexp.MustCompile(`(?i)</t[dh]>|<br\s*/?>|</tr>|</p>|</li>`)
	anyTag      = regexp.MustCompile(`<[^>]*>`)
	mdImage     = regexp.MustCompile(`!\[[^\]]*\]\([^)]*\)`)
	mdLink      = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	comment     = regexp.MustCompile(`(?s)<!--.*?-->`)
	rowRule     = regexp.MustCompile(`^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$`)
	lineMarker  = regexp.MustCompile(`^\s{0,3}(?:#{1,6}\s+|[-*+•]\s+|>\s?)`)
	emphasis    = strings.NewReplacer("**", "", "__", "", "`", "")
	spaceRunsRe = regexp.MustCompile(`[ \t]+`)
)

// Plain turns a block's markdown into the words a reader sees: headings,
// list and quote markers, emphasis, images, comments, table rules and
// HTML tags go; table cells are separated by spaces.
func Plain(md string) string {
	md = comment.ReplaceAllString(md, " ")
	md = mdImage.ReplaceAllString(md, " ")
	md = mdLink.ReplaceAllString(md, "$1")
	md = cellBreak.ReplaceAllString(md, " ")
	md = anyTag.ReplaceAllString(md, " ")
	md = html.UnescapeString(md)
	var lines []string
	for _, l := range strings.Split(md, "\n") {
		l = strings.TrimSpace(l)
		if rowRule.MatchString(l) && strings.Contains(l, "-") {
			continue
		}
		l = lineMarker.ReplaceAllString(l, "")
		l = strings.ReplaceAll(l, "|", " ")
		l = emphasis.Replace(l)
		l = strings.TrimSpace(spaceRunsRe.ReplaceAllString(l, " "))
		if l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
