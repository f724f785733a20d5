package office

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// maxAuxPart caps the small parts that are parsed into maps rather than
// streamed (relationships, styles, numbering, presentation, workbook): real
// ones are kilobytes, so 32 MiB only ever stops an attack.
const maxAuxPart = 32 << 20

// maxImagePart caps one embedded picture. Larger pictures are skipped, not
// an error: a 64 MiB picture is a photo, not text for OCR.
const maxImagePart = 64 << 20

// checkEvery is how many XML tokens pass between two ctx checks.
const checkEvery = 1024

// archive is one opened OOXML package with its guards. It belongs to one
// Extract call and is not safe for concurrent use.
type archive struct {
	ctx   context.Context
	kind  Kind
	lim   Limits
	f     *os.File
	parts map[string]*zip.File // by lower-cased part name
	used  int64                // uncompressed bytes read so far
	// images caches probed pictures by part name; a nil value means the
	// part is not a usable picture.
	images map[string]*Image
}

// openArchive opens path as a zip and applies the container guards: entry
// count, entry names and the declared uncompressed total.
func openArchive(ctx context.Context, path string, kind Kind, lim Limits) (*archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", kind, err)
	}
	a := &archive{ctx: ctx, kind: kind, lim: lim, f: f, images: map[string]*Image{}}
	if err := a.init(); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *archive) init() error {
	st, err := a.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", a.kind, err)
	}
	size := st.Size()
	if size == 0 {
		return failure.Validation("the %s file is empty", a.kind)
	}
	var head [8]byte
	if n, _ := a.f.ReadAt(head[:], 0); n == len(head) && bytes.Equal(head[:], oleMagic) {
		return failure.Validation("the %s file is password-protected or a legacy binary Office file (.doc, .xls, .ppt), not Office Open XML", a.kind)
	}
	if n, ok := countEntries(a.f, size, a.lim.MaxEntries); ok && n > a.lim.MaxEntries {
		return a.tooManyEntries(n)
	}
	zr, err := zip.NewReader(a.f, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return failure.Validation("the %s file is damaged or is not an Office Open XML (zip) file: %v", a.kind, err)
	}
	if len(zr.File) > a.lim.MaxEntries {
		return a.tooManyEntries(len(zr.File))
	}
	a.parts = make(map[string]*zip.File, len(zr.File))
	var total uint64
	for _, zf := range zr.File {
		if !safeName(zf.Name) {
			return failure.Validation("the %s contains an unsafe entry name %q (path traversal guard)", a.kind, zf.Name)
		}
		total += min(zf.UncompressedSize64, 1<<62) // no overflow: at most len(File) ≤ 10⁴ terms
		if total > uint64(a.lim.MaxUncompressed) {
			return a.tooBig()
		}
		key := strings.ToLower(zf.Name)
		if _, dup := a.parts[key]; !dup {
			a.parts[key] = zf
		}
	}
	return nil
}

func (a *archive) close() { _ = a.f.Close() }

func (a *archive) tooManyEntries(n int) error {
	return failure.Validation("the %s has %d or more zip entries, more than the limit of %d (zip bomb guard)", a.kind, n, a.lim.MaxEntries)
}

func (a *archive) tooBig() error {
	return failure.Validation("the %s expands to more than %s (zip bomb guard)", a.kind, sizeText(a.lim.MaxUncompressed))
}

// oleMagic starts a Compound File: legacy .doc/.xls/.ppt, and also every
// password-protected OOXML file (an encrypted package inside a CFB).
var oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// safeName reports whether a zip entry name stays inside the package when
// extracted: no backslash, no leading slash, no drive letter, no ".."
// segment, no NUL.
func safeName(name string) bool {
	if strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") {
		return false
	}
	if len(name) >= 2 && name[1] == ':' {
		return false
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == ".." {
			return false
		}
	}
	return true
}

// countEntries counts central directory headers without building the
// directory in memory, stopping after max+1, so a package with millions of
// entries is rejected before archive/zip allocates a File for each. It
// reports false when the end record cannot be found; zip.NewReader then
// decides, and the entry count is checked again after it.
func countEntries(r io.ReaderAt, size int64, max int) (int, bool) {
	tailLen := min(size, 22+65535)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil && err != io.EOF {
		return 0, false
	}
	end := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	if end < 0 || end+22 > len(tail) {
		return 0, false
	}
	records := uint64(binary.LittleEndian.Uint16(tail[end+10:]))
	offset := uint64(binary.LittleEndian.Uint32(tail[end+16:]))
	if records == 0xFFFF || offset == 0xFFFFFFFF {
		// zip64: the locator sits just before the end record.
		loc := end - 20
		if loc < 0 || !bytes.Equal(tail[loc:loc+4], []byte("PK\x06\x07")) {
			return 0, false
		}
		var rec [56]byte
		off := int64(binary.LittleEndian.Uint64(tail[loc+8:]))
		if off < 0 || off > size-56 {
			return 0, false
		}
		if _, err := r.ReadAt(rec[:], off); err != nil || !bytes.Equal(rec[:4], []byte("PK\x06\x06")) {
			return 0, false
		}
		records = binary.LittleEndian.Uint64(rec[32:])
		offset = binary.LittleEndian.Uint64(rec[48:])
	}
	if records > uint64(max) {
		return int(min(records, uint64(max)+1)), true
	}
	if offset >= uint64(size) {
		return 0, false
	}
	br := bufio.NewReader(io.NewSectionReader(r, int64(offset), size-int64(offset)))
	var hdr [46]byte
	n := 0
	for n <= max {
		if _, err := io.ReadFull(br, hdr[:]); err != nil || binary.LittleEndian.Uint32(hdr[:]) != 0x02014b50 {
			break
		}
		extra := int(binary.LittleEndian.Uint16(hdr[28:])) + int(binary.LittleEndian.Uint16(hdr[30:])) + int(binary.LittleEndian.Uint16(hdr[32:]))
		if _, err := br.Discard(extra); err != nil {
			break
		}
		n++
	}
	return n, true
}

// has reports whether the package holds the part.
func (a *archive) has(part string) bool {
	_, ok := a.parts[strings.ToLower(part)]
	return ok
}

// open returns a reader of one part that counts against the package budget
// and the part cap max. A missing part gives fs.ErrNotExist.
func (a *archive) open(part string, max int64) (io.ReadCloser, error) {
	if err := a.ctx.Err(); err != nil {
		return nil, err
	}
	zf, ok := a.parts[strings.ToLower(part)]
	if !ok {
		return nil, fmt.Errorf("%s part %s: %w", a.kind, part, fs.ErrNotExist)
	}
	if zf.UncompressedSize64 > uint64(max) {
		return nil, a.partTooBig(part, max)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, a.readErr(part, err)
	}
	return &budgetReader{rc: rc, a: a, part: part, max: max}, nil
}

func (a *archive) partTooBig(part string, max int64) error {
	return failure.Validation("the %s part %s is larger than %s (size guard)", a.kind, part, sizeText(max))
}

// budgetReader stops reading at the package budget or the part cap. It
// never trusts the sizes the zip declares: it counts what it hands out.
type budgetReader struct {
	rc   io.ReadCloser
	a    *archive
	part string
	n    int64 // bytes read from this part
	max  int64 // cap for this part
}

func (b *budgetReader) Read(p []byte) (int, error) {
	// Read at most one byte past either limit, so crossing it is detected
	// without decompressing further.
	room := min(b.max-b.n, b.a.lim.MaxUncompressed-b.a.used) + 1
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	b.a.used += int64(n)
	switch {
	case b.a.used > b.a.lim.MaxUncompressed:
		return n, b.a.tooBig()
	case b.n > b.max:
		return n, b.a.partTooBig(b.part, b.max)
	case err != nil && err != io.EOF:
		return n, b.a.readErr(b.part, err)
	}
	return n, err
}

// Close closes the part's reader.
func (b *budgetReader) Close() error { return b.rc.Close() }

// readErr classifies an error met while reading a part. The bytes come from
// a local file, so anything but an error of the file itself (or a cancelled
// ctx) is a problem of the content.
func (a *archive) readErr(part string, err error) error {
	var errno syscall.Errno
	var se *xml.SyntaxError
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, failure.ErrValidation),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &errno):
		// A real I/O failure of the local file (EIO…), not the content's
		// fault. (A bad offset in the zip gives a PathError without an
		// errno: "readat: negative offset".)
		return fmt.Errorf("read %s part %s: %w", a.kind, part, err)
	case errors.As(err, &se):
		return failure.Validation("the %s part %s is not well-formed XML (line %d: %s)", a.kind, part, se.Line, se.Msg)
	case errors.Is(err, zip.ErrFormat):
		// archive/zip returns ErrFormat once a part yields more bytes than
		// its header declares: the classic zip bomb.
		return failure.Validation("the %s part %s is damaged or expands beyond its declared size (zip bomb guard)", a.kind, part)
	case errors.Is(err, zip.ErrChecksum), errors.As(err, &ce), errors.Is(err, io.ErrUnexpectedEOF):
		return failure.Validation("the %s part %s is damaged (%v)", a.kind, part, err)
	default:
		return failure.Validation("the %s part %s cannot be read: %v", a.kind, part, err)
	}
}

// xmlPart decodes one part token by token.
type xmlPart struct {
	d    *xml.Decoder
	rc   io.ReadCloser
	a    *archive
	name string
	n    int
}

// xml opens a part for token decoding. The caller must close it.
func (a *archive) xml(part string, max int64) (*xmlPart, error) {
	rc, err := a.open(part, max)
	if err != nil {
		return nil, err
	}
	return &xmlPart{d: xml.NewDecoder(rc), rc: rc, a: a, name: part}, nil
}

func (p *xmlPart) close() { _ = p.rc.Close() }

// next returns the next token, io.EOF at the end, or a classified error.
func (p *xmlPart) next() (xml.Token, error) {
	p.n++
	if p.n%checkEvery == 0 {
		if err := p.a.ctx.Err(); err != nil {
			return nil, err
		}
	}
	tok, err := p.d.Token()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, p.a.readErr(p.name, err)
	}
	return tok, nil
}

// skip consumes the rest of the element whose start was just read.
func (p *xmlPart) skip() error {
	for depth := 1; depth > 0; {
		tok, err := p.next()
		if err != nil {
			return unexpectedEOF(p, err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// stream feeds every start and end element of the rest of the part to
// start and end, until the part ends.
func (p *xmlPart) stream(start func(xml.StartElement) error, end func(xml.EndElement)) error {
	for {
		tok, err := p.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := start(t); err != nil {
				return err
			}
		case xml.EndElement:
			end(t)
		}
	}
}

// step says what walk does with a child element after fn has seen its start.
type step int

const (
	// enter reads on into the child (its descendants reach fn too).
	enter step = iota
	// skipSubtree consumes the child unread.
	skipSubtree
	// consumed means fn itself read the child to its end.
	consumed
)

// walk reads the element whose start was just read to its end, calling fn
// with every start element inside it.
func (p *xmlPart) walk(fn func(xml.StartElement) (step, error)) error {
	for depth := 1; depth > 0; {
		tok, err := p.next()
		if err != nil {
			return unexpectedEOF(p, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			st, err := fn(t)
			if err != nil {
				return err
			}
			switch st {
			case enter:
				depth++
			case skipSubtree:
				if err := p.skip(); err != nil {
					return err
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// text returns the character data of the element whose start was just
// read, consuming it to its end.
func (p *xmlPart) text() (string, error) {
	var sb strings.Builder
	for depth := 1; depth > 0; {
		tok, err := p.next()
		if err != nil {
			return "", unexpectedEOF(p, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			sb.Write(t)
		}
	}
	return sb.String(), nil
}

// unexpectedEOF turns an io.EOF inside an element into a validation error.
func unexpectedEOF(p *xmlPart, err error) error {
	if err == io.EOF {
		return failure.Validation("the %s part %s ends inside an element", p.a.kind, p.name)
	}
	return err
}

// attr returns the value of the first attribute with the local name, in
// any namespace.
func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// nsAttr returns the value of a namespaced attribute such as r:id, ignoring
// an unprefixed attribute of the same local name (p:sldId has both).
func nsAttr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local && a.Name.Space != "" {
			return a.Value
		}
	}
	return ""
}

// onOff reads a boolean property element such as w:b: present means on
// unless w:val says otherwise.
func onOff(se xml.StartElement) bool {
	switch strings.ToLower(attr(se, "val")) {
	case "0", "false", "off", "none":
		return false
	}
	return true
}

// rel is one package relationship.
type rel struct {
	typ      string
	target   string // resolved part name, or the raw URI when external
	external bool
}

// rels reads the relationships of a part ("" for the package root). A
// missing relationships part gives an empty map.
func (a *archive) rels(source string) (map[string]rel, error) {
	relsPart := path.Join(path.Dir(source), "_rels", path.Base(source)+".rels")
	if source == "" {
		relsPart = "_rels/.rels"
	}
	out := map[string]rel{}
	if !a.has(relsPart) {
		return out, nil
	}
	p, err := a.xml(relsPart, maxAuxPart)
	if err != nil {
		return nil, err
	}
	defer p.close()
	err = p.stream(func(se xml.StartElement) error {
		if se.Name.Local != "Relationship" {
			return nil
		}
		r := rel{typ: attr(se, "Type"), target: attr(se, "Target")}
		if strings.EqualFold(attr(se, "TargetMode"), "External") {
			r.external = true
		} else if t, ok := resolveTarget(source, r.target); ok {
			r.target = t
		} else {
			return nil // points outside the package: ignore
		}
		if id := attr(se, "Id"); id != "" {
			if _, dup := out[id]; !dup {
				out[id] = r
			}
		}
		return nil
	}, func(xml.EndElement) {})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// resolveTarget resolves a relationship target against its source part,
// reporting false for a target that leaves the package.
func resolveTarget(source, target string) (string, bool) {
	if u, err := url.PathUnescape(target); err == nil {
		target = u
	}
	if i := strings.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	var p string
	if strings.HasPrefix(target, "/") {
		p = path.Clean(target[1:])
	} else {
		p = path.Join(path.Dir(source), target)
	}
	if p == "." || p == ".." || strings.HasPrefix(p, "../") || p == "" {
		return "", false
	}
	return p, true
}

// mainPart finds the package's main part through the root relationships,
// falling back to the usual name, and checks that its root element is the
// one the kind expects (a DOCX handed in as a PPTX must not pass as an
// empty deck).
func (a *archive) mainPart(fallback, root, what string) (string, error) {
	rels, err := a.rels("")
	if err != nil {
		return "", err
	}
	part := fallback
	for _, id := range sortedKeys(rels) {
		r := rels[id]
		if !r.external && strings.HasSuffix(r.typ, "/officeDocument") && a.has(r.target) {
			part = r.target
			break
		}
	}
	if !a.has(part) {
		return "", failure.Validation("the file is not %s: it has no %s", what, fallback)
	}
	p, err := a.xml(part, a.lim.MaxUncompressed)
	if err != nil {
		return "", err
	}
	defer p.close()
	for {
		tok, err := p.next()
		if err == io.EOF {
			return "", failure.Validation("the file is not %s: its main part %s is empty", what, part)
		}
		if err != nil {
			return "", err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != root {
				return "", failure.Validation("the file is not %s: its main part %s holds a %s", what, part, se.Name.Local)
			}
			return part, nil
		}
	}
}

// verifyAll inflates every entry once, through the budget, and discards
// the bytes. archive/zip then has checked each entry's real size and CRC
// against its header, so a reader that trusts the headers (excelize reads
// every part with the declared size and ignores read errors) is safe.
func (a *archive) verifyAll() error {
	for _, name := range sortedKeys(a.parts) {
		zf := a.parts[name]
		if zf.FileInfo().IsDir() {
			continue
		}
		rc, err := a.open(zf.Name, a.lim.MaxUncompressed)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// readAll reads a whole (small) part.
func (a *archive) readAll(part string, max int64) ([]byte, error) {
	rc, err := a.open(part, max)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
