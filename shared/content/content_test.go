package content_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/failure"
)

func TestCopyLimited(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		r        func() io.Reader
		maxBytes int64
		wantN    int64
		wantErr  error
		wantMsg  string
	}{
		{name: "no_limit", ctx: context.Background(), r: func() io.Reader { return bytes.NewReader(data) }, wantN: 1000},
		{name: "at_limit", ctx: context.Background(), r: func() io.Reader { return bytes.NewReader(data) }, maxBytes: 1000, wantN: 1000},
		{
			name: "one_byte_over_limit", ctx: context.Background(), r: func() io.Reader { return bytes.NewReader(data) },
			maxBytes: 999, wantErr: failure.ErrValidation, wantMsg: "MAX_SOURCE_BYTES=999",
		},
		{
			name: "endless_stream_is_cut_at_the_limit", ctx: context.Background(),
			r:        func() io.Reader { return endless{} },
			maxBytes: 4096, wantErr: failure.ErrValidation, wantMsg: "MAX_SOURCE_BYTES=4096",
		},
		{
			name: "reader_fails_midway", ctx: context.Background(),
			r:       func() io.Reader { return io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errBoom)) },
			wantErr: errBoom,
		},
		{
			name: "cancelled_context", ctx: cancelled, r: func() io.Reader { return bytes.NewReader(data) },
			wantErr: context.Canceled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			n, err := content.CopyLimited(tc.ctx, dst, tc.r(), tc.maxBytes)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr, "CopyLimited")
				assert.ErrorContains(t, err, tc.wantMsg, "CopyLimited")
				_, serr := os.Stat(dst)
				assert.ErrorIs(t, serr, os.ErrNotExist, "dst left behind after failure")
				return
			}
			require.NoError(t, err, "CopyLimited")
			got, err := os.ReadFile(dst)
			require.NoError(t, err)
			assert.Equal(t, tc.wantN, n, "copied n")
			assert.Len(t, got, int(tc.wantN), "copied file size")
		})
	}
	t.Run("existing_dst_is_not_overwritten_or_removed", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "dst")
		require.NoError(t, os.WriteFile(dst, []byte("keep"), 0o600))
		_, err := content.CopyLimited(context.Background(), dst, bytes.NewReader(data), 0)
		require.Error(t, err, "CopyLimited over an existing file succeeded")
		got, err := os.ReadFile(dst)
		require.NoError(t, err, "existing dst")
		assert.Equal(t, "keep", string(got), "existing dst, want it untouched")
	})
}

// errBoom is the error a failing reader returns.
var errBoom = errors.New("boom")

// endless is a reader that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
