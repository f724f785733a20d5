// Package content is where sources come from and results go to. Dir keeps
// both on the local filesystem: a first-class mode for people who just want
// to OCR files.
package content

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

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
)

// Source describes a fetched source document.
type Source struct {
	// Name is the file name (for <name>.md).
	Name string
	// MIME is the declared type, if any (the sniffed type wins).
	MIME string
	// Size is the number of bytes written.
	Size int64
}

// Result is a finished document to store.
type Result struct {
	JobID     string
	ContentID string
	// SourceName is the source's file name.
	SourceName string
	Markdown   []byte
	// IdempotencyKey identifies what made the result (IdempotencyKey);
	// stores that reuse results record it.
	IdempotencyKey string
	// Metadata describes how the result was made.
	Metadata map[string]any
}

// Dir reads sources from files under its roots and writes results as
// <source name>.md into its output directory.
type Dir struct {
	roots []string
	out   string
}

// NewDir returns a directory store that reads files under roots and writes
// to out (created if needed).
func NewDir(roots []string, out string) (*Dir, error) {
	d := &Dir{}
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
func (d *Dir) Out() string { return d.out }

// resolve maps a job's source reference to a file path under a root.
func (d *Dir) resolve(j job.Job) (string, error) {
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
func (d *Dir) Fetch(ctx context.Context, j job.Job, dst string, maxBytes int64) (Source, error) {
	p, err := d.resolve(j)
	if err != nil {
		return Source{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return Source{}, failure.Validation("source file %s: %v", p, err)
	}
	if !st.Mode().IsRegular() {
		return Source{}, failure.Validation("source %s is not a regular file", p)
	}
	if maxBytes > 0 && st.Size() > maxBytes {
		return Source{}, failure.Validation("source is %d bytes, more than MAX_SOURCE_BYTES=%d", st.Size(), maxBytes)
	}
	src, err := os.Open(p)
	if err != nil {
		return Source{}, failure.Validation("open source: %v", err)
	}
	defer src.Close()
	n, err := CopyLimited(ctx, dst, src, maxBytes)
	if err != nil {
		return Source{}, err
	}
	name := j.Name
	if name == "" {
		name = filepath.Base(p)
	}
	return Source{Name: name, MIME: j.MIME, Size: n}, nil
}

// CopyLimited streams r into a new file at dst, failing with a validation
// error naming the limit once more than maxBytes arrive (0 = no limit). It
// removes dst on any failure.
func CopyLimited(ctx context.Context, dst string, r io.Reader, maxBytes int64) (n int64, err error) {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", filepath.Base(dst), err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", filepath.Base(dst), cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	lr := r
	if maxBytes > 0 {
		lr = io.LimitReader(r, maxBytes+1)
	}
	n, err = io.Copy(f, ctxReader{ctx, lr})
	if err != nil {
		return n, fmt.Errorf("copy source: %w", err)
	}
	if maxBytes > 0 && n > maxBytes {
		return n, failure.Validation("source is larger than MAX_SOURCE_BYTES=%d", maxBytes)
	}
	return n, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Store writes the result to <out>/<source name>.md and returns that path.
// Writing the same job twice replaces the file.
func (d *Dir) Store(ctx context.Context, r Result) (string, error) {
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
