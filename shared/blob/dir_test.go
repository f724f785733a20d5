package blob_test

import (
	"bytes"
	"io"
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

func TestDir_Get_reads_small_and_large_objects_alike(t *testing.T) {
	d, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		size int
	}{
		{name: "empty", size: 0},
		{name: "record_sized", size: 300},
		{name: "at_the_in_memory_limit", size: 64 << 10},
		{name: "just_over_it", size: 64<<10 + 1},
		{name: "page_image_sized", size: 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16+1)[:tc.size]
			key := "jobs/j/pages/" + tc.name
			require.NoError(t, d.Put(ctx, key, bytes.NewReader(want)))
			rc, err := d.Get(ctx, key)
			require.NoError(t, err)
			defer func() { assert.NoError(t, rc.Close()) }()
			ra, ok := rc.(io.ReaderAt)
			require.True(t, ok, "Get returns an io.ReaderAt (simple-content uploads re-read it)")
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			if tc.size > 1 {
				b := make([]byte, 1)
				_, err := ra.ReadAt(b, int64(tc.size-1))
				require.NoError(t, err)
				assert.Equal(t, want[tc.size-1], b[0], "ReadAt the last byte")
			}
		})
	}
}
