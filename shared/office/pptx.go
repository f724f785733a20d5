package office

import (
	"encoding/xml"
	"strings"
)

// PPTX slides come in the order of ppt/presentation.xml's p:sldIdLst, not
// in the order of their part names. Each slide is one pass of XML tokens
// over its shape tree; the notes come from the slide's notesSlide part.

// pptPara is an a:p being read.
type pptPara struct {
	lvl          int
	bullet       string // "", "none", "char" or "num" from a:pPr
	text         inline
	bold, italic bool
}

// pptShape is a p:sp being read.
type pptShape struct {
	placeholder bool
	phType      string // "" is the default type, obj
	paras       []*pptPara
}

// pptTable is an a:tbl being read.
type pptTable struct {
	rows  [][]string
	row   []string
	inRow bool
	cell  []string // paragraphs of the open cell
	inTc  bool
	skip  bool // the open cell is a merge continuation
}

// pptSlide collects one slide (or notes slide).
type pptSlide struct {
	a      *archive
	rels   map[string]rel
	notes  bool // a notes slide: only body text counts
	title  string
	hidden bool
	blocks []pptBlock
	images imageList

	shape *pptShape
	para  *pptPara
	table *pptTable
	inPic int
	alt   []bool
}

type pptBlock struct {
	md   string
	list bool
}

func extractPPTX(a *archive) ([]Page, error) {
	part, err := a.mainPart("ppt/presentation.xml", "presentation", "a PowerPoint presentation")
	if err != nil {
		return nil, err
	}
	rels, err := a.rels(part)
	if err != nil {
		return nil, err
	}
	ids, err := slideIDs(a, part)
	if err != nil {
		return nil, err
	}
	var pages []Page
	for _, id := range ids {
		if err := a.ctx.Err(); err != nil {
			return nil, err
		}
		r, ok := rels[id]
		if !ok || r.external || !a.has(r.target) {
			continue // a dangling entry: the slide is simply not there
		}
		pg, err := readSlide(a, r.target)
		if err != nil {
			return nil, err
		}
		pages = append(pages, pg)
	}
	if len(pages) == 0 {
		pages = []Page{{}}
	}
	return pages, nil
}

// slideIDs returns the relationship ids of p:sldIdLst in order.
func slideIDs(a *archive, part string) ([]string, error) {
	p, err := a.xml(part, maxAuxPart)
	if err != nil {
		return nil, err
	}
	defer p.close()
	var ids []string
	err = p.stream(func(se xml.StartElement) error {
		if se.Name.Local == "sldId" {
			if id := nsAttr(se, "id"); id != "" {
				ids = append(ids, id)
			}
		}
		return nil
	}, func(xml.EndElement) {})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func readSlide(a *archive, part string) (Page, error) {
	rels, err := a.rels(part)
	if err != nil {
		return Page{}, err
	}
	s := &pptSlide{a: a, rels: rels}
	if err := s.walk(part); err != nil {
		return Page{}, err
	}
	var pb pageBuilder
	if s.hidden {
		pb.add("<!-- hidden slide -->", false)
	}
	if s.title != "" {
		pb.add("# "+s.title, false)
	}
	for _, b := range s.blocks {
		pb.add(b.md, b.list)
	}
	if np := relTarget(a, rels, "/notesSlide", ""); np != "" {
		n := &pptSlide{a: a, notes: true}
		if err := n.walk(np); err != nil {
			return Page{}, err
		}
		var ls []string
		for i, b := range n.blocks {
			if i > 0 {
				ls = append(ls, ">")
			}
			for l := range strings.SplitSeq(b.md, "\n") {
				ls = append(ls, "> "+l)
			}
		}
		if len(ls) > 0 {
			pb.add("> Notes:\n>\n"+strings.Join(ls, "\n"), false)
		}
	}
	pb.images = s.images
	return pb.page(), nil
}

func (s *pptSlide) walk(part string) error {
	p, err := s.a.xml(part, s.a.lim.MaxUncompressed)
	if err != nil {
		return err
	}
	defer p.close()
	return p.stream(func(t xml.StartElement) error { return s.start(p, t) }, s.end)
}

func (s *pptSlide) start(p *xmlPart, se xml.StartElement) error {
	switch se.Name.Local {
	case "sld":
		s.hidden = attr(se, "show") == "0" || attr(se, "show") == "false"
	case "sp":
		s.shape = &pptShape{}
	case "ph":
		if s.shape != nil {
			s.shape.placeholder, s.shape.phType = true, attr(se, "type")
		}
	case "p":
		s.para = &pptPara{}
	case "pPr":
		if s.para != nil {
			s.para.lvl = atoi(attr(se, "lvl"), 0)
		}
	case "buNone":
		s.setBullet("none")
	case "buChar", "buBlip":
		s.setBullet("char")
	case "buAutoNum":
		s.setBullet("num")
	case "r":
		if s.para != nil {
			s.para.bold, s.para.italic = false, false
		}
	case "rPr":
		if s.para != nil {
			s.para.bold, s.para.italic = pptFlag(attr(se, "b")), pptFlag(attr(se, "i"))
		}
		return p.skip()
	case "t":
		text, err := p.text()
		if err == nil && s.para != nil {
			s.para.text.add(text, s.para.bold, s.para.italic)
		}
		return err
	case "br":
		if s.para != nil {
			s.para.text.add("\n", false, false)
		}
	case "tbl":
		if !s.notes {
			s.table = &pptTable{}
		}
	case "tr":
		if s.table != nil {
			s.table.row, s.table.inRow = nil, true
		}
	case "tc":
		if s.table != nil && s.table.inRow {
			s.table.cell, s.table.inTc = nil, true
			s.table.skip = pptFlag(attr(se, "hMerge")) || pptFlag(attr(se, "vMerge"))
		}
	case "pic":
		s.inPic++
	case "blip":
		if s.inPic > 0 && !s.notes {
			return s.picture(nsAttr(se, "embed"))
		}
	case "AlternateContent":
		s.alt = append(s.alt, false)
	case "Choice":
		if n := len(s.alt); n > 0 {
			if s.alt[n-1] {
				return p.skip()
			}
			s.alt[n-1] = true
		}
	case "Fallback", "lstStyle", "endParaRPr", "extLst", "bg", "tblPr", "tblGrid", "tcPr", "spPr", "style":
		return p.skip()
	}
	return nil
}

// setBullet records an explicit bullet kind on the open paragraph.
func (s *pptSlide) setBullet(kind string) {
	if s.para != nil {
		s.para.bullet = kind
	}
}

func (s *pptSlide) end(ee xml.EndElement) {
	switch ee.Name.Local {
	case "p":
		pa := s.para
		s.para = nil
		switch {
		case pa == nil:
		case s.table != nil && s.table.inTc:
			if t := cellText(pa.text.render(false)); t != "" {
				s.table.cell = append(s.table.cell, t)
			}
		case s.shape != nil:
			s.shape.paras = append(s.shape.paras, pa)
		}
	case "sp":
		if s.shape != nil {
			s.finishShape(s.shape)
			s.shape = nil
		}
	case "tc":
		if tb := s.table; tb != nil && tb.inTc {
			text := strings.Join(tb.cell, "<br>")
			if tb.skip {
				text = ""
			}
			tb.row = append(tb.row, text)
			tb.cell, tb.inTc = nil, false
		}
	case "tr":
		if tb := s.table; tb != nil && tb.inRow {
			tb.rows = append(tb.rows, tb.row)
			tb.row, tb.inRow = nil, false
		}
	case "tbl":
		if s.table != nil {
			s.blocks = append(s.blocks, pptBlock{md: renderTable(s.table.rows)})
			s.table = nil
		}
	case "pic":
		s.inPic = max(s.inPic-1, 0)
	case "AlternateContent":
		if n := len(s.alt); n > 0 {
			s.alt = s.alt[:n-1]
		}
	}
}

func (s *pptSlide) finishShape(sh *pptShape) {
	switch sh.phType {
	case "dt", "ftr", "sldNum", "hdr", "sldImg":
		return // date, footer, slide number, header, slide thumbnail
	case "title", "ctrTitle":
		if s.title == "" && !s.notes {
			var ls []string
			for _, pa := range sh.paras {
				ls = append(ls, lines(pa.text.render(true))...)
			}
			s.title = strings.Join(ls, " ")
			if s.title != "" {
				return
			}
		}
	}
	if s.notes && sh.phType != "body" {
		return
	}
	// Body and content placeholders take bullets from the slide master;
	// text boxes and other shapes have none unless they say so.
	bulleted := sh.placeholder && (sh.phType == "" || sh.phType == "body" || sh.phType == "obj") && !s.notes
	for _, pa := range sh.paras {
		ls := lines(pa.text.render(false))
		if len(ls) == 0 {
			continue
		}
		marker := ""
		switch pa.bullet {
		case "char":
			marker = "- "
		case "num":
			marker = "1. "
		case "":
			if bulleted {
				marker = "- "
			}
		}
		if marker == "" {
			s.blocks = append(s.blocks, pptBlock{md: strings.Join(ls, "\n")})
			continue
		}
		s.blocks = append(s.blocks, pptBlock{md: listItem(ls, pa.lvl, marker), list: true})
	}
}

func (s *pptSlide) picture(id string) error {
	r, ok := s.rels[id]
	if !ok || r.external {
		return nil
	}
	img, err := s.a.image(r.target)
	if err != nil || img == nil {
		return err
	}
	s.images.add(img)
	s.blocks = append(s.blocks, pptBlock{md: placeholder(img.Name)})
	return nil
}

// pptFlag reads a DrawingML boolean attribute.
func pptFlag(v string) bool { return v == "1" || v == "true" }
