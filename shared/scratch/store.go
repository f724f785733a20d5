package scratch

import (
	"context"
	"errors"
	"io"
	"path"
	"strings"
)

// Store is the scratch-store port: where a job's working state lives
// between stages. Every stage reads and writes it; package blob holds its
// adapters (a local directory, S3, memory), and scratchtest is the
// conformance suite each of them passes.
//
// Keys are slash-separated, relative, and never contain "..": ValidKey
// says which. Writes are atomic: a reader sees either the old object or
// the whole new one, never a part. Implementations are safe for concurrent
// use, also by several processes sharing the same backing store.
type Store interface {
	// Put stores r under key, replacing any previous object atomically.
	Put(ctx context.Context, key string, r io.Reader) error
	// Create stores r under key only if key is absent; otherwise it returns
	// an error wrapping ErrExists. Of concurrent creators exactly one wins.
	Create(ctx context.Context, key string, r io.Reader) error
	// Get opens key's object; the caller must Close it. A missing key is
	// an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Exists reports whether key exists.
	Exists(ctx context.Context, key string) (bool, error)
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Sentinel errors every Store returns (wrapped) for these conditions.
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
