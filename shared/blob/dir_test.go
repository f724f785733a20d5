package blob_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/scratch/scratchtest"
)

func TestDirConformance(t *testing.T) {
	scratchtest.Run(t, func(t *testing.T) scratchtest.Store {
		d, err := blob.NewDir(t.TempDir())
		require.NoError(t, err)
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
			if tc.wantErr {
				require.Error(t, err, "Open(%q)", tc.url)
				return
			}
			require.NoError(t, err, "Open(%q)", tc.url)
			d, ok := s.(*blob.Dir)
			require.True(t, ok, "Open(%q) = %T %v, want a directory store at %q", tc.url, s, s, dir)
			assert.Equal(t, dir, d.Root(), "Open(%q): root of the directory store", tc.url)
		})
	}
}
