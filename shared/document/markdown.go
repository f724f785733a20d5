package document

import (
	"regexp"
	"strings"
)

var (
	listItemRe = regexp.MustCompile(`^\s{0,3}(?:[-*+•]|\d{1,3}[.)])\s+\S`)
	imageRe    = regexp.MustCompile(`^(?:!\[[^\]]*\]\([^)]*\)|<!-- image: .* -->|<img\b)`)
)

// FromMarkdown splits page markdown into blocks without boxes, labelled by
// their markdown syntax: headings are titles, each list item is a
// list_item, pipe tables and HTML tables are tables, $$…$$ and \[…\] are
// formulas, images (and office picture placeholders) are figures, every
// other paragraph is text. It is the layout of pages whose route knows
// structure but no geometry: office documents and engines that report no
// layout.
func FromMarkdown(md string) []Block {
	var out []Block
	for _, para := range paragraphs(md) {
		out = append(out, splitParagraph(para)...)
	}
	return out
}

// paragraphs splits md at blank lines, keeping fenced code and HTML
// tables whole.
func paragraphs(md string) []string {
	var out, cur []string
	fenced, inTable := false, false
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	for line := range strings.SplitSeq(strings.ReplaceAll(md, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "```"):
			fenced = !fenced
		case strings.HasPrefix(strings.ToLower(t), "<table"):
			inTable = !strings.Contains(strings.ToLower(t), "</table>")
		case inTable && strings.Contains(strings.ToLower(t), "</table>"):
			inTable = false
			cur = append(cur, line)
			continue
		}
		if t == "" && !fenced && !inTable {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return out
}

// splitParagraph labels one paragraph; headings and list items become a
// block each.
func splitParagraph(p string) []Block {
	lines := strings.Split(p, "\n")
	first := strings.TrimSpace(lines[0])
	lower := strings.ToLower(first)
	switch {
	case strings.HasPrefix(first, "|"):
		return []Block{{Label: LabelTable, Text: p}}
	case strings.HasPrefix(lower, "<table"):
		return []Block{{Label: LabelTable, Text: p}}
	case strings.HasPrefix(first, "$$") || strings.HasPrefix(first, `\[`):
		return []Block{{Label: LabelFormula, Text: p}}
	case strings.HasPrefix(first, "```"):
		return []Block{{Label: LabelText, Text: p}}
	case imageRe.MatchString(first) && len(lines) == 1:
		return []Block{{Label: LabelFigure, Text: p}}
	}
	var out []Block
	var cur []string
	label := ""
	flush := func() {
		if len(cur) > 0 {
			out = append(out, Block{Label: label, Text: strings.Join(cur, "\n")})
			cur = nil
		}
	}
	for _, line := range lines {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "#"):
			flush()
			out = append(out, Block{Label: LabelTitle, Text: line})
		case listItemRe.MatchString(line):
			flush()
			label, cur = LabelListItem, []string{line}
		default:
			if len(cur) == 0 {
				label = LabelText
			}
			cur = append(cur, line)
		}
	}
	flush()
	return out
}
