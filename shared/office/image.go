package office

import (
	"bytes"
	"image"
	_ "image/gif"  // picture headers
	_ "image/jpeg" // picture headers
	_ "image/png"  // picture headers
	"path"
	"strings"

	_ "golang.org/x/image/bmp"  // picture headers
	_ "golang.org/x/image/tiff" // picture headers
	_ "golang.org/x/image/webp" // picture headers
)

// image returns the picture in part, or nil when it is not worth OCR: too
// small, too large, not a raster format the OCR route decodes (EMF, WMF,
// SVG), or unreadable as an image. Pictures are cached per part, so a logo
// repeated on every page is read once. Only budget, ctx and zip damage are
// errors.
func (a *archive) image(part string) (*Image, error) {
	if img, seen := a.images[part]; seen {
		return img, nil
	}
	a.images[part] = nil
	zf, ok := a.parts[strings.ToLower(part)]
	if !ok || zf.UncompressedSize64 > maxImagePart || zf.UncompressedSize64 < MinImageBytes {
		return nil, nil
	}
	data, err := a.readAll(part, maxImagePart)
	if err != nil {
		return nil, err
	}
	img := probeImage(safeImageName(path.Base(part)), data)
	a.images[part] = img
	return img, nil
}

// probeImage sniffs a picture's format and size from its header and keeps
// it only when it is large enough to hold text.
func probeImage(name string, data []byte) *Image {
	if len(data) < MinImageBytes {
		return nil
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	w, h := cfg.Width, cfg.Height
	if w < MinImageSide/4 || h < MinImageSide/4 || int64(w)*int64(h) < MinImageSide*MinImageSide {
		return nil
	}
	return &Image{Name: name, MIME: "image/" + format, Data: data, Width: w, Height: h}
}

// imageList collects a page's pictures, each once, in order of first use.
type imageList struct {
	list []Image
	seen map[string]bool
}

func (l *imageList) add(img *Image) {
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if !l.seen[img.Name] {
		l.seen[img.Name] = true
		l.list = append(l.list, *img)
	}
}

// placeholder is the markdown line that marks where a picture occurs.
func placeholder(name string) string {
	return "<!-- image: " + name + " -->"
}

// safeImageName keeps a picture name usable inside an HTML comment and as a
// file name: anything but letters, digits, '.', '_' and '-' becomes '_'.
func safeImageName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, name)
}
