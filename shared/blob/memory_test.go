package blob_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/scratch/scratchtest"
)

func TestMemoryConformance(t *testing.T) {
	scratchtest.Run(t, func(t *testing.T) scratchtest.Store { return blob.NewMemory() })
}

func TestMemory_DeletePrefix(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string
		want   []string
	}{
		{"removes_one_jobs_objects", "jobs/a/", []string{"deadletters/a.json", "jobs/ab/x", "jobs/b/x"}},
		{"leaves_everything_for_an_unknown_prefix", "jobs/c/", []string{"deadletters/a.json", "jobs/a/pages/1.json", "jobs/a/x", "jobs/ab/x", "jobs/b/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := blob.NewMemory()
			for _, k := range []string{"jobs/a/x", "jobs/a/pages/1.json", "jobs/ab/x", "jobs/b/x", "deadletters/a.json"} {
				require.NoError(t, m.Put(t.Context(), k, strings.NewReader(k)))
			}
			require.NoError(t, m.DeletePrefix(t.Context(), tc.prefix))
			keys, err := m.List(t.Context(), "")
			require.NoError(t, err)
			assert.Equal(t, tc.want, keys)
			assert.Equal(t, len(tc.want), m.Len())
		})
	}
	assert.Error(t, blob.NewMemory().DeletePrefix(t.Context(), ""), "an empty prefix is refused")
}
