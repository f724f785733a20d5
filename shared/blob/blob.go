// Package blob is the pipeline's scratch storage: page images, page results,
// manifests and the finalize lock, under jobs/<job>/.
//
// Keys are slash-separated, relative, and never contain "..". Writes are
// atomic: a reader sees either the old object or the whole new one.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
)

// Sentinel errors shared by every store.
var (
	// ErrNotFound means the key does not exist.
	ErrNotFound = errors.New("blob not found")
	// ErrExists means a conditional create found the key already present.
	ErrExists = errors.New("blob already exists")
)

// ValidKey reports whether key is a clean relative key.
func ValidKey(key string) bool {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return false
	}
	if path.Clean(key) != key {
		return false
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return false
		}
	}
	return true
}

// Store is what every blob store implements (the pipeline's scratch.Store
// has the same method set).
type Store interface {
	// Put stores r under key, replacing any previous object atomically.
	Put(ctx context.Context, key string, r io.Reader) error
	// Create stores r only if key is absent, else returns ErrExists.
	Create(ctx context.Context, key string, r io.Reader) error
	// Get opens key's object; a missing key is ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Exists reports whether key exists.
	Exists(ctx context.Context, key string) (bool, error)
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Interface guards.
var (
	_ Store = (*Dir)(nil)
	_ Store = (*S3)(nil)
)

// Open returns the store named by rawURL: file:///abs/dir or a plain
// directory path (one host), or s3://bucket/prefix (shared by every pod;
// s3o configures the client, credentials come from the default chain).
func Open(ctx context.Context, rawURL string, s3o S3Options) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("blob url %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "", "file":
		p := u.Path
		if u.Scheme == "" {
			p = rawURL
		} else if u.Host != "" && u.Host != "localhost" {
			// file://./rel or file://rel: treat host+path as a relative path.
			p = u.Host + u.Path
		}
		return NewDir(p)
	case "s3":
		bucket, prefix, err := ParseS3URL(rawURL)
		if err != nil {
			return nil, err
		}
		client, err := NewS3Client(ctx, s3o)
		if err != nil {
			return nil, err
		}
		return NewS3(client, bucket, prefix)
	default:
		return nil, fmt.Errorf("blob url %q: unsupported scheme %q (supported: file, s3)", rawURL, u.Scheme)
	}
}

// JobPrefix returns the key prefix of a job's scratch objects.
func JobPrefix(job string) string { return "jobs/" + job + "/" }
