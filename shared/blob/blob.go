// Package blob is the pipeline's scratch storage: page images, page results,
// manifests and the finalize lock, under jobs/<job>/.
//
// Keys are slash-separated, relative, and never contain "..". Writes are
// atomic: a reader sees either the old object or the whole new one.
package blob

import (
	"errors"
	"fmt"
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

// Open returns the store named by rawURL: file:///abs/dir or a plain
// directory path.
func Open(rawURL string) (*Dir, error) {
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
	default:
		return nil, fmt.Errorf("blob url %q: unsupported scheme %q (supported: file)", rawURL, u.Scheme)
	}
}

// JobPrefix returns the key prefix of a job's scratch objects.
func JobPrefix(job string) string { return "jobs/" + job + "/" }
