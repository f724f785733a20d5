// Package contentdir is the content store on the local filesystem: sources
// are files under allowed roots, results are written as <source name>.md
// into an output directory. It is the first-class mode for people who just
// want to OCR files (ocrflow run --content dir, CONTENT_STORE=dir).
package contentdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
)

// Store reads sources from files under its roots and writes results as
// <source name>.md into its output directory.
type Store struct {
	roots []string
	out   string
}

// New returns a directory store that reads files under roots and writes
// to out (created if needed).
func New(roots []string, out string) (*Store, error) {
	d := &Store{}
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("content root %q: %w", r, err)
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		d.roots = append(d.roots, abs)
	}
	if len(d.roots) == 0 {
		return nil, errors.New("content dir: at least one source root is required")
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("content out %q: %w", out, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("content out: %w", err)
	}
	d.out = abs
	return d, nil
}

// Out returns the output directory.
func (d *Store) Out() string { return d.out }

// resolve maps a job's source reference to a file path under a root.
func (d *Store) resolve(j job.Job) (string, error) {
	ref := j.Location
	if ref == "" {
		ref = j.ContentID
	}
	if ref == "" {
		return "", failure.Validation("job %s names no file (set file.blob.location or the content id to a path)", j.ID)
	}
	if u, err := url.Parse(ref); err == nil && u.Scheme == "file" {
		ref = u.Path
	} else if err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		return "", failure.Validation("source %q: the directory content store reads only file paths", ref)
	}
	p := ref
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.roots[0], p)
	}
	p = filepath.Clean(p)
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", failure.Validation("source file %s does not exist", ref)
	}
	if err != nil {
		return "", failure.Validation("source file %s: %v", ref, err)
	}
	for _, r := range d.roots {
		if real == r || strings.HasPrefix(real, r+string(filepath.Separator)) {
			return real, nil
		}
	}
	return "", failure.Permanent("source file %s is outside the allowed content roots", ref)
}

// Fetch copies the job's source to dst, refusing more than maxBytes (0 = no
// limit). A partial dst is removed on failure.
func (d *Store) Fetch(ctx context.Context, j job.Job, dst string, maxBytes int64) (content.Source, error) {
	p, err := d.resolve(j)
	if err != nil {
		return content.Source{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return content.Source{}, failure.Validation("source file %s: %v", p, err)
	}
	if !st.Mode().IsRegular() {
		return content.Source{}, failure.Validation("source %s is not a regular file", p)
	}
	if maxBytes > 0 && st.Size() > maxBytes {
		return content.Source{}, failure.Validation("source is %d bytes, more than MAX_SOURCE_BYTES=%d", st.Size(), maxBytes)
	}
	src, err := os.Open(p)
	if err != nil {
		return content.Source{}, failure.Validation("open source: %v", err)
	}
	defer func() { _ = src.Close() }() // read-only: nothing is lost
	n, err := content.CopyLimited(ctx, dst, src, maxBytes)
	if err != nil {
		return content.Source{}, err
	}
	name := j.Name
	if name == "" {
		name = filepath.Base(p)
	}
	return content.Source{Name: name, MIME: j.MIME, Size: n}, nil
}

// Store writes the result to <out>/<source name>.md and returns that path.
// Writing the same job twice replaces the file.
func (d *Store) Store(ctx context.Context, r content.Result) (string, error) {
	name := filepath.Base(r.SourceName)
	if name == "" || name == "." || name == string(filepath.Separator) {
		name = r.JobID
	}
	p := filepath.Join(d.out, name+".md")
	tmp, err := os.CreateTemp(d.out, ".tmp-*.md")
	if err != nil {
		return "", fmt.Errorf("store result: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(r.Markdown)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("store result: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("store result: %w", err)
	}
	return p, nil
}
