// Package content is the content-store port: where sources come from and
// results go to. It holds the types both sides agree on (Source, Result,
// Recipe and the idempotency key, Derived, Failure) and the optional
// capabilities a store may have (Reuser, FailureRecorder). The adapters
// live beside it: contentdir (the local filesystem) and simplecontent
// (simple-content's v5 API).
package content

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ocrflow/ocrflow/shared/failure"
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
	// Markdown is the assembled markdown, always made (pages are made of
	// it); it is stored only when Outputs lists it, or when Outputs is
	// empty (a markdown-only result).
	Markdown []byte
	// Outputs are the requested outputs, in job.Outputs order (Files).
	Outputs []Output
	// Unavailable maps a requested output that cannot be made for this
	// source (a searchable PDF of a DOCX) to the reason; stores record it
	// so that reuse does not wait for it.
	Unavailable map[string]string
	// IdempotencyKey identifies what made the result (IdempotencyKey);
	// stores that reuse results record it.
	IdempotencyKey string
	// Metadata describes how the result was made.
	Metadata map[string]any
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
