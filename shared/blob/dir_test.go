package blob_test

import (
	"testing"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/scratch/scratchtest"
)

func TestDirConformance(t *testing.T) {
	scratchtest.Run(t, func(t *testing.T) scratchtest.Store {
		d, err := blob.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		url     string
		wantErr bool
	}{
		{"file_url", "file://" + dir, false},
		{"plain_path", dir, false},
		{"unsupported_scheme", "gs://bucket/x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := blob.Open(t.Context(), tc.url, blob.S3Options{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Open(%q) err = %v, wantErr %v", tc.url, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if d, ok := s.(*blob.Dir); !ok || d.Root() != dir {
				t.Fatalf("Open(%q) = %T %v, want a directory store at %q", tc.url, s, s, dir)
			}
		})
	}
}
