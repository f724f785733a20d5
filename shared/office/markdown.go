package office

import (
	"maps"
	"slices"
	"strings"
	"unicode"
)

// Text is written as it stands: markdown punctuation inside it is not
// escaped, because the pages feed search and language models, for which
// "file_name" reads better than "file\_name". Only table cells are escaped
// ("|" and line breaks), since those would break the table.

// span is text with one formatting.
type span struct {
	text         string
	bold, italic bool
}

// inline is formatted text being collected, adjacent spans of the same
// formatting merged.
type inline struct{ spans []span }

func (in *inline) add(text string, bold, italic bool) {
	if text == "" {
		return
	}
	if n := len(in.spans); n > 0 && in.spans[n-1].bold == bold && in.spans[n-1].italic == italic {
		in.spans[n-1].text += text
		return
	}
	in.spans = append(in.spans, span{text, bold, italic})
}

// render writes the text with **bold**, *italic* and ***both***; plain
// drops the markers (headings, titles). Whitespace at a span's edges moves
// outside its markers, which markdown requires ("** x**" is not bold).
func (in *inline) render(plain bool) string {
	var sb strings.Builder
	for _, s := range in.spans {
		marker := ""
		switch {
		case plain:
		case s.bold && s.italic:
			marker = "***"
		case s.bold:
			marker = "**"
		case s.italic:
			marker = "*"
		}
		// s.text is lead + core + trail, lead and trail whitespace.
		rest := strings.TrimLeftFunc(s.text, unicode.IsSpace)
		lead := s.text[:len(s.text)-len(rest)]
		core := strings.TrimRightFunc(rest, unicode.IsSpace)
		trail := rest[len(core):]
		if marker == "" || core == "" {
			sb.WriteString(s.text)
			continue
		}
		sb.WriteString(lead + marker + core + marker + trail)
	}
	return sb.String()
}

// lines splits rendered text at line breaks, trims each line and drops the
// empty ones: leading spaces would turn a line into a code block, and an
// empty line would split one paragraph in two.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimFunc(l, unicode.IsSpace); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// cellText makes rendered text safe inside a table cell.
func cellText(s string) string {
	return strings.ReplaceAll(strings.Join(lines(s), "<br>"), "|", `\|`)
}

// renderTable writes rows as a markdown pipe table, the first row as the
// header, short rows padded. It returns "" for a table without cells.
func renderTable(rows [][]string) string {
	ncol := 0
	for _, r := range rows {
		ncol = max(ncol, len(r))
	}
	if ncol == 0 {
		return ""
	}
	var sb strings.Builder
	row := func(cells []string) {
		sb.WriteString("|")
		for i := range ncol {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			sb.WriteString(" " + c + " |")
		}
	}
	for i, r := range rows {
		if i > 0 {
			sb.WriteString("\n")
		}
		row(r)
		if i == 0 {
			sb.WriteString("\n|" + strings.Repeat(" --- |", ncol))
		}
	}
	return sb.String()
}

// pageBuilder joins a page's blocks: a blank line between blocks, one
// newline between consecutive list items.
type pageBuilder struct {
	sb       strings.Builder
	lastList bool
	images   imageList
}

func (p *pageBuilder) add(md string, list bool) {
	if md == "" {
		return
	}
	if p.sb.Len() > 0 {
		if list && p.lastList {
			p.sb.WriteString("\n")
		} else {
			p.sb.WriteString("\n\n")
		}
	}
	p.sb.WriteString(md)
	p.lastList = list
}

func (p *pageBuilder) empty() bool { return p.sb.Len() == 0 && len(p.images.list) == 0 }

func (p *pageBuilder) page() Page {
	return Page{Markdown: p.sb.String(), Images: p.images.list}
}

// listItem prefixes the lines of a list item: marker on the first, the
// continuation lines indented to its text.
func listItem(ls []string, level int, marker string) string {
	indent := strings.Repeat("  ", min(max(level, 0), 8))
	cont := "\n" + indent + strings.Repeat(" ", len(marker))
	return indent + marker + strings.Join(ls, cont)
}

// heading writes a markdown heading of level 1–6 on one line.
func heading(ls []string, level int) string {
	return strings.Repeat("#", min(max(level, 1), 6)) + " " + strings.Join(ls, " ")
}

// sortedKeys returns a map's keys in order, for deterministic walks.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
