package office

import (
	"encoding/xml"
	"path"
	"strconv"
	"strings"
)

// DOCX is read from word/document.xml in one pass of XML tokens. Elements
// are matched by local name, so the w: prefix (or the Strict OOXML
// namespace) does not matter. Styles and numbering are read first: heading
// levels and list kinds live there, under style ids that Word localises
// ("berschrift1" in German), so levels come from style names.

// docStyle is one w:style of word/styles.xml.
type docStyle struct {
	name, basedOn string
	outline       int // w:outlineLvl, -1 when absent
	numID         string
	ilvl          int
	hasNum        bool
}

// absNum is one w:abstractNum: the number format per level.
type absNum struct {
	fmts      map[int]string
	styleLink string // w:numStyleLink: the formats live in that style's list
}

// numDef is one w:num: its abstract list and per-level format overrides.
type numDef struct {
	abs  string
	over map[int]string
}

// docPara is a paragraph being read. Text boxes put paragraphs inside
// paragraphs, so these stack.
type docPara struct {
	style       string
	numID       string
	hasNum      bool
	ilvl        int
	hasIlvl     bool
	outline     int
	breakBefore bool
	section     int // index into docx.sections of a w:sectPr ending here, or -1
	chunks      []docChunk
	// the current run's formatting
	bold, italic, hidden bool
}

// docChunk is a piece of a paragraph: text, a picture or a page break.
type docChunk struct {
	text      inline
	img       *Image
	pageBreak bool
}

func (p *docPara) addText(s string) {
	if p.hidden || s == "" {
		return
	}
	if n := len(p.chunks); n == 0 || p.chunks[n-1].img != nil || p.chunks[n-1].pageBreak {
		p.chunks = append(p.chunks, docChunk{})
	}
	p.chunks[len(p.chunks)-1].text.add(s, p.bold, p.italic)
}

// docTable is a w:tbl being read; tables nest inside cells.
type docTable struct {
	rows   [][]string
	row    []string
	inRow  bool
	cell   *docCell
	images []*Image
}

// docCell is a w:tc being read.
type docCell struct {
	paras  []string
	span   int
	merged bool // a vertical-merge continuation: left empty
}

// docBlock is one block of the document in order, or a break.
type docBlock struct {
	md      string
	list    bool
	images  []*Image
	brk     int // brkNone, brkPage or brkSection
	section int // for brkSection: the section that ends here
}

const (
	brkNone = iota
	brkPage
	brkSection
)

type docx struct {
	a        *archive
	rels     map[string]rel
	styles   map[string]*docStyle
	abstract map[string]*absNum
	nums     map[string]numDef
	blocks   []docBlock
	sections []string // w:type of each w:sectPr in document order
	paras    []*docPara
	tables   []*docTable
	alt      []bool // per open mc:AlternateContent: a Choice was taken
}

func extractDOCX(a *archive) ([]Page, error) {
	part, err := a.mainPart("word/document.xml", "document", "a Word document")
	if err != nil {
		return nil, err
	}
	rels, err := a.rels(part)
	if err != nil {
		return nil, err
	}
	d := &docx{a: a, rels: rels, styles: map[string]*docStyle{}, abstract: map[string]*absNum{}, nums: map[string]numDef{}}
	dir := path.Dir(part)
	if sp := relTarget(a, rels, "/styles", path.Join(dir, "styles.xml")); sp != "" {
		if err := d.readStyles(sp); err != nil {
			return nil, err
		}
	}
	if np := relTarget(a, rels, "/numbering", path.Join(dir, "numbering.xml")); np != "" {
		if err := d.readNumbering(np); err != nil {
			return nil, err
		}
	}
	p, err := a.xml(part, a.lim.MaxUncompressed)
	if err != nil {
		return nil, err
	}
	defer p.close()
	if err := d.walk(p); err != nil {
		return nil, err
	}
	return d.pages(), nil
}

// relTarget returns the target of the first internal relationship whose
// type ends in suffix, else fallback, or "" when the part is absent.
func relTarget(a *archive, rels map[string]rel, suffix, fallback string) string {
	for _, id := range sortedKeys(rels) {
		if r := rels[id]; !r.external && strings.HasSuffix(r.typ, suffix) && a.has(r.target) {
			return r.target
		}
	}
	if a.has(fallback) {
		return fallback
	}
	return ""
}

func (d *docx) readStyles(part string) error {
	p, err := d.a.xml(part, maxAuxPart)
	if err != nil {
		return err
	}
	defer p.close()
	var cur *docStyle
	var id string
	return p.stream(func(t xml.StartElement) error {
		switch t.Name.Local {
		case "style":
			cur, id = &docStyle{outline: -1}, attr(t, "styleId")
		case "name":
			if cur != nil {
				cur.name = attr(t, "val")
			}
		case "basedOn":
			if cur != nil {
				cur.basedOn = attr(t, "val")
			}
		case "outlineLvl":
			if cur != nil {
				cur.outline = atoi(attr(t, "val"), -1)
			}
		case "numId":
			if cur != nil {
				cur.numID, cur.hasNum = attr(t, "val"), true
			}
		case "ilvl":
			if cur != nil {
				cur.ilvl = atoi(attr(t, "val"), 0)
			}
		case "rPr", "tblPr", "tcPr", "trPr", "tblStylePr", "pPrChange", "rPrChange":
			if err := p.skip(); err != nil {
				return err
			}
		}
		return nil
	}, func(t xml.EndElement) {
		if t.Name.Local == "style" && cur != nil {
			if _, dup := d.styles[id]; !dup && id != "" {
				d.styles[id] = cur
			}
			cur = nil
		}
	})
}

// headingLevel is a paragraph style's heading level (1–6), or 0. A style
// counts when its name is "Title" or "heading N", when it has an outline
// level, or when its basedOn chain reaches such a style.
func (d *docx) headingLevel(id string) int {
	for range 32 { // basedOn chains are short; this also stops cycles
		if id == "" {
			return 0
		}
		s := d.styles[id]
		if s == nil {
			return nameLevel(id) // no styles part: try the id itself
		}
		if l := nameLevel(s.name); l > 0 {
			return l
		}
		if s.outline >= 0 && s.outline <= 8 {
			return min(s.outline+1, 6)
		}
		id = s.basedOn
	}
	return 0
}

// nameLevel maps "Title" to 1 and "heading N" / "Heading1" to N (at most 6).
func nameLevel(name string) int {
	n := strings.ReplaceAll(strings.ToLower(name), " ", "")
	if n == "title" {
		return 1
	}
	if rest, ok := strings.CutPrefix(n, "heading"); ok && len(rest) == 1 && rest[0] >= '1' && rest[0] <= '9' {
		return min(int(rest[0]-'0'), 6)
	}
	return 0
}

// styleNum is the numbering a paragraph style (or its bases) applies.
func (d *docx) styleNum(id string) (numID string, ilvl int, ok bool) {
	for range 32 {
		s := d.styles[id]
		if s == nil {
			return "", 0, false
		}
		if s.hasNum {
			return s.numID, s.ilvl, true
		}
		id = s.basedOn
	}
	return "", 0, false
}

func (d *docx) readNumbering(part string) error {
	p, err := d.a.xml(part, maxAuxPart)
	if err != nil {
		return err
	}
	defer p.close()
	var (
		abs     *absNum
		absID   string
		num     *numDef
		numID   string
		lvl     int
		inLvlOv bool
	)
	return p.stream(func(t xml.StartElement) error {
		switch t.Name.Local {
		case "abstractNum":
			abs, absID = &absNum{fmts: map[int]string{}}, attr(t, "abstractNumId")
		case "num":
			num, numID = &numDef{over: map[int]string{}}, attr(t, "numId")
		case "abstractNumId":
			if num != nil {
				num.abs = attr(t, "val")
			}
		case "lvlOverride":
			inLvlOv, lvl = true, atoi(attr(t, "ilvl"), 0)
		case "lvl":
			if !inLvlOv {
				lvl = atoi(attr(t, "ilvl"), 0)
			}
		case "numFmt":
			switch {
			case inLvlOv && num != nil:
				num.over[lvl] = attr(t, "val")
			case abs != nil:
				abs.fmts[lvl] = attr(t, "val")
			}
		case "numStyleLink":
			if abs != nil {
				abs.styleLink = attr(t, "val")
			}
		case "rPr", "pPr":
			if err := p.skip(); err != nil {
				return err
			}
		}
		return nil
	}, func(t xml.EndElement) {
		switch t.Name.Local {
		case "abstractNum":
			if abs != nil {
				if _, dup := d.abstract[absID]; !dup {
					d.abstract[absID] = abs
				}
			}
			abs = nil
		case "num":
			if num != nil {
				if _, dup := d.nums[numID]; !dup {
					d.nums[numID] = *num
				}
			}
			num = nil
		case "lvlOverride":
			inLvlOv = false
		}
	})
}

// numFormat is the w:numFmt of a list level ("bullet", "decimal", "none"…),
// or "" when the list is not defined.
func (d *docx) numFormat(numID string, ilvl int) string {
	for range 4 { // a numStyleLink hop or two, never a cycle
		n, ok := d.nums[numID]
		if !ok {
			return ""
		}
		if f, ok := n.over[ilvl]; ok {
			return f
		}
		abs := d.abstract[n.abs]
		if abs == nil {
			return ""
		}
		if f, ok := abs.fmts[ilvl]; ok {
			return f
		}
		if abs.styleLink == "" {
			return ""
		}
		if numID, _, ok = d.styleNum(abs.styleLink); !ok {
			return ""
		}
	}
	return ""
}

// para is the innermost open paragraph, or nil.
func (d *docx) para() *docPara {
	if n := len(d.paras); n > 0 {
		return d.paras[n-1]
	}
	return nil
}

// table is the innermost open table, or nil.
func (d *docx) table() *docTable {
	if n := len(d.tables); n > 0 {
		return d.tables[n-1]
	}
	return nil
}

// walk reads the document body.
func (d *docx) walk(p *xmlPart) error {
	return p.stream(func(t xml.StartElement) error { return d.start(p, t) }, d.end)
}

func (d *docx) start(p *xmlPart, se xml.StartElement) error {
	pa := d.para()
	switch se.Name.Local {
	case "p":
		d.paras = append(d.paras, &docPara{outline: -1, section: -1})
	case "pPr":
		if pa == nil {
			return p.skip()
		}
		return d.readPPr(p, pa)
	case "r":
		if pa != nil {
			pa.bold, pa.italic, pa.hidden = false, false, false
		}
	case "rPr":
		if pa == nil {
			return p.skip()
		}
		return readRPr(p, pa)
	case "t":
		s, err := p.text()
		if err == nil && pa != nil {
			pa.addText(s)
		}
		return err
	case "tab", "ptab":
		if pa != nil {
			pa.addText(" ")
		}
	case "br":
		if pa == nil {
			break
		}
		if attr(se, "type") == "page" {
			if !pa.hidden {
				pa.chunks = append(pa.chunks, docChunk{pageBreak: true})
			}
		} else {
			pa.addText("\n")
		}
	case "cr":
		if pa != nil {
			pa.addText("\n")
		}
	case "noBreakHyphen":
		if pa != nil {
			pa.addText("-")
		}
	case "blip":
		return d.picture(nsAttr(se, "embed"))
	case "imagedata":
		return d.picture(nsAttr(se, "id"))
	case "tbl":
		d.tables = append(d.tables, &docTable{})
	case "tr":
		if tb := d.table(); tb != nil {
			tb.row, tb.inRow = nil, true
		}
	case "trPr":
		if tb := d.table(); tb != nil && tb.inRow {
			return readTrPr(p, tb)
		}
		return p.skip()
	case "tc":
		if tb := d.table(); tb != nil && tb.inRow {
			tb.cell = &docCell{span: 1}
		}
	case "tcPr":
		if tb := d.table(); tb != nil && tb.cell != nil {
			return readTcPr(p, tb.cell)
		}
		return p.skip()
	case "sectPr":
		typ, err := readSectPr(p)
		d.sections = append(d.sections, typ)
		return err
	case "AlternateContent":
		d.alt = append(d.alt, false)
	case "Choice":
		// Take the first choice; the others and the fallback say the same.
		if n := len(d.alt); n > 0 {
			if d.alt[n-1] {
				return p.skip()
			}
			d.alt[n-1] = true
		}
	case "Fallback",
		// deleted and moved-away revisions, ruby guides, control and field
		// plumbing, formatting that is not text
		"del", "moveFrom", "rt", "sdtPr", "sdtEndPr", "tblPr", "tblGrid", "tblPrEx",
		"instrText", "delText", "delInstrText", "fldData", "footnoteReference", "endnoteReference":
		return p.skip()
	}
	return nil
}

func (d *docx) end(ee xml.EndElement) {
	switch ee.Name.Local {
	case "p":
		if n := len(d.paras); n > 0 {
			pa := d.paras[n-1]
			d.paras = d.paras[:n-1]
			d.finishPara(pa)
		}
	case "tc":
		if tb := d.table(); tb != nil && tb.cell != nil {
			c := tb.cell
			tb.cell = nil
			text := strings.Join(c.paras, "<br>")
			if c.merged {
				text = ""
			}
			tb.row = append(tb.row, text)
			for i := 1; i < min(c.span, 64); i++ {
				tb.row = append(tb.row, "")
			}
		}
	case "tr":
		if tb := d.table(); tb != nil && tb.inRow {
			tb.rows = append(tb.rows, tb.row)
			tb.row, tb.inRow = nil, false
		}
	case "tbl":
		if n := len(d.tables); n > 0 {
			tb := d.tables[n-1]
			d.tables = d.tables[:n-1]
			d.finishTable(tb)
		}
	case "AlternateContent":
		if n := len(d.alt); n > 0 {
			d.alt = d.alt[:n-1]
		}
	}
}

// picture places the picture of relationship id in the open paragraph.
func (d *docx) picture(id string) error {
	r, ok := d.rels[id]
	if !ok || r.external {
		return nil
	}
	img, err := d.a.image(r.target)
	if err != nil || img == nil {
		return err
	}
	if pa := d.para(); pa != nil {
		pa.chunks = append(pa.chunks, docChunk{img: img})
		return nil
	}
	d.blocks = append(d.blocks, docBlock{md: placeholder(img.Name), images: []*Image{img}})
	return nil
}

// cell is the open cell of the innermost table, or nil.
func (d *docx) cell() *docCell {
	if tb := d.table(); tb != nil {
		return tb.cell
	}
	return nil
}

func (d *docx) finishPara(pa *docPara) {
	if c := d.cell(); c != nil {
		// Inside a table: inline text only, pictures as placeholders.
		var parts []string
		for _, ch := range pa.chunks {
			switch {
			case ch.img != nil:
				parts = append(parts, placeholder(ch.img.Name))
				d.table().images = append(d.table().images, ch.img)
			case !ch.pageBreak:
				if s := cellText(ch.text.render(false)); s != "" {
					parts = append(parts, s)
				}
			}
		}
		if len(parts) > 0 {
			c.paras = append(c.paras, strings.Join(parts, " "))
		}
		return
	}
	level := 0
	if pa.outline >= 0 && pa.outline <= 8 {
		level = min(pa.outline+1, 6)
	} else {
		level = d.headingLevel(pa.style)
	}
	marker, ilvl := "", 0
	if level == 0 {
		numID, lv, ok := pa.numID, pa.ilvl, pa.hasNum
		if sid, sl, sok := d.styleNum(pa.style); sok {
			if !ok {
				numID, ok = sid, true
			}
			if !pa.hasIlvl {
				lv = sl
			}
		}
		if ok && numID != "" && numID != "0" {
			ilvl = lv
			switch d.numFormat(numID, lv) {
			case "bullet":
				marker = "- "
			case "none":
			default:
				marker = "1. "
			}
		}
	}
	if pa.breakBefore {
		d.blocks = append(d.blocks, docBlock{brk: brkPage})
	}
	prefixed := false
	for _, ch := range pa.chunks {
		switch {
		case ch.pageBreak:
			d.blocks = append(d.blocks, docBlock{brk: brkPage})
		case ch.img != nil:
			d.blocks = append(d.blocks, docBlock{md: placeholder(ch.img.Name), images: []*Image{ch.img}})
		default:
			ls := lines(ch.text.render(level > 0))
			if len(ls) == 0 {
				continue
			}
			b := docBlock{md: strings.Join(ls, "\n")}
			if !prefixed {
				prefixed = true
				switch {
				case level > 0:
					b.md = heading(ls, level)
				case marker != "":
					b.md, b.list = listItem(ls, ilvl, marker), true
				}
			}
			d.blocks = append(d.blocks, b)
		}
	}
	if pa.section >= 0 {
		d.blocks = append(d.blocks, docBlock{brk: brkSection, section: pa.section})
	}
}

func (d *docx) finishTable(tb *docTable) {
	if tb.inRow { // a row left open by a damaged file
		tb.rows = append(tb.rows, tb.row)
	}
	if c := d.cell(); c != nil {
		// A table in a cell cannot be a markdown table: flatten it.
		for _, r := range tb.rows {
			var cells []string
			for _, s := range r {
				if s != "" {
					cells = append(cells, s)
				}
			}
			if len(cells) > 0 {
				c.paras = append(c.paras, strings.Join(cells, " "))
			}
		}
		d.table().images = append(d.table().images, tb.images...)
		return
	}
	if md := renderTable(tb.rows); md != "" || len(tb.images) > 0 {
		d.blocks = append(d.blocks, docBlock{md: md, images: tb.images})
	}
}

// readPPr reads paragraph properties, consuming the element.
func (d *docx) readPPr(p *xmlPart, pa *docPara) error {
	return p.walk(func(t xml.StartElement) (step, error) {
		switch t.Name.Local {
		case "pStyle":
			pa.style = attr(t, "val")
		case "numId":
			pa.numID, pa.hasNum = attr(t, "val"), true
		case "ilvl":
			pa.ilvl, pa.hasIlvl = atoi(attr(t, "val"), 0), true
		case "outlineLvl":
			pa.outline = atoi(attr(t, "val"), -1)
		case "pageBreakBefore":
			pa.breakBefore = onOff(t)
		case "sectPr":
			typ, err := readSectPr(p)
			if err != nil {
				return consumed, err
			}
			d.sections = append(d.sections, typ)
			pa.section = len(d.sections) - 1
			return consumed, nil
		case "rPr", "pPrChange", "tabs", "framePr":
			return skipSubtree, nil
		}
		return enter, nil
	})
}

// readRPr reads a run's bold, italic and hidden flags, consuming the element.
func readRPr(p *xmlPart, pa *docPara) error {
	return p.walk(func(t xml.StartElement) (step, error) {
		switch t.Name.Local {
		case "b":
			pa.bold = onOff(t)
		case "i":
			pa.italic = onOff(t)
		case "vanish":
			pa.hidden = onOff(t)
		case "rPrChange":
			return skipSubtree, nil
		}
		return enter, nil
	})
}

// readTcPr reads a cell's span and merge, consuming the element.
func readTcPr(p *xmlPart, c *docCell) error {
	return p.walk(func(t xml.StartElement) (step, error) {
		switch t.Name.Local {
		case "gridSpan":
			c.span = atoi(attr(t, "val"), 1)
		case "vMerge", "hMerge":
			c.merged = attr(t, "val") != "restart"
		case "tcPrChange":
			return skipSubtree, nil
		}
		return enter, nil
	})
}

// readTrPr adds the empty grid cells a row skips at its start, consuming
// the element.
func readTrPr(p *xmlPart, tb *docTable) error {
	return p.walk(func(t xml.StartElement) (step, error) {
		switch t.Name.Local {
		case "gridBefore":
			for range min(atoi(attr(t, "val"), 0), 64) {
				tb.row = append(tb.row, "")
			}
		case "trPrChange":
			return skipSubtree, nil
		}
		return enter, nil
	})
}

// readSectPr returns a section's w:type ("" when absent), consuming it.
func readSectPr(p *xmlPart) (string, error) {
	typ := ""
	err := p.walk(func(t xml.StartElement) (step, error) {
		switch t.Name.Local {
		case "type":
			typ = attr(t, "val")
		case "sectPrChange":
			return skipSubtree, nil
		}
		return enter, nil
	})
	return typ, err
}

// pages splits the blocks into pages. A w:sectPr describes the section it
// ends, and its w:type says how that section starts, so the break after
// section k depends on the type of section k+1; an absent type means
// nextPage (ECMA-376 §17.6.22).
func (d *docx) pages() []Page {
	var pages []Page
	var cur pageBuilder
	flush := func() {
		if !cur.empty() {
			pages = append(pages, cur.page())
		}
		cur = pageBuilder{}
	}
	for _, b := range d.blocks {
		switch b.brk {
		case brkPage:
			flush()
		case brkSection:
			if next := b.section + 1; next < len(d.sections) {
				switch d.sections[next] {
				case "", "nextPage", "oddPage", "evenPage":
					flush()
				}
			}
		default:
			cur.add(b.md, b.list)
			for _, img := range b.images {
				cur.images.add(img)
			}
		}
	}
	flush()
	if len(pages) == 0 {
		pages = []Page{{}}
	}
	return pages
}

// atoi parses a small decimal attribute, giving def when it is not one.
func atoi(s string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 1<<20 {
		return def
	}
	return n
}
