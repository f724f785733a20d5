// Package contentdir is the content store on the local filesystem: sources
// are files under allowed roots, results are written as <source name>.md
// (and .json, .ocr.pdf, as the job asks) into an output directory. It is the first-class mode for people who just
// want to OCR files (ocrflow run --content dir, CONTENT_STORE=dir).
package contentdir

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// Store writes the result's outputs (Result.Files) and returns the
// markdown's path (or the first output's).
func (d *Store) Store(ctx context.Context, r content.Result) (string, error) {
	st, err := d.StoreOutputs(ctx, r)
	return st.Ref, err
}

// StoreOutputs writes each output of the result to <out>/<source name>
// with the output's extension (.md, .json, .ocr.pdf) and returns the
// paths. A file is written in full under a temporary name and renamed
// into place, so a reader never sees half of it; writing the same job
// twice replaces the files.
func (d *Store) StoreOutputs(ctx context.Context, r content.Result) (content.Stored, error) {
	st := content.Stored{Refs: map[string]string{}}
	for _, o := range r.Files() {
		p := filepath.Join(d.out, r.FileName(o.Format))
		if err := d.write(ctx, p, o); err != nil {
			return content.Stored{}, fmt.Errorf("store %s: %w", o.Format, err)
		}
		st.Refs[o.Format] = p
		if st.Ref == "" || o.Format == job.OutputMarkdown {
			st.Ref = p
		}
	}
	return st, nil
}

// write copies o to path p through a temporary file in the same
// directory.
func (d *Store) write(ctx context.Context, p string, o content.Output) error {
	src, err := o.Reader(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(d.out, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
