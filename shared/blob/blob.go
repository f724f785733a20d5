// Package blob holds the adapters of the scratch-store port
// (scratch.Store): a local directory (one host), S3 (shared by every pod)
// and memory (one process). Open picks one from a BLOB_URL.
package blob

import (
	"context"
	"fmt"
	"net/url"

	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Interface guards: every adapter is a scratch store.
var (
	_ scratch.Store = (*Dir)(nil)
	_ scratch.Store = (*S3)(nil)
)

// Open returns the store named by rawURL: file:///abs/dir or a plain
// directory path (one host), or s3://bucket/prefix (shared by every pod;
// s3o configures the client, credentials come from the default chain).
func Open(ctx context.Context, rawURL string, s3o S3Options) (scratch.Store, error) {
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
