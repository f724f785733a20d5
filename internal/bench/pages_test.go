package bench

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlatRows_judge_growth_and_ceiling(t *testing.T) {
	sizes := []int{50, 500, 3000}
	for _, tc := range []struct {
		name               string
		peaks              []float64
		wantFlat, wantPeak bool
		wantRatio          float64
	}{
		{name: "flat_and_low", peaks: []float64{100, 104, 108}, wantFlat: true, wantPeak: true, wantRatio: 1.08},
		{name: "growing_with_pages", peaks: []float64{100, 180, 190}, wantFlat: false, wantPeak: true, wantRatio: 1.9},
		{name: "flat_but_too_high", peaks: []float64{210, 212, 215}, wantFlat: true, wantPeak: false, wantRatio: 215.0 / 210},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := flatRows("memory_run", "ocrflow run", sizes, tc.peaks)
			require.Len(t, rows, 2)
			flat, peak := rows[0], rows[1]
			assert.Equal(t, "memory_run_flat", flat.Name)
			assert.Equal(t, tc.wantFlat, flat.Pass, "flat: %+v", flat)
			assert.InDelta(t, tc.wantRatio, flat.Ratio, 0.001)
			assert.Equal(t, tc.wantPeak, peak.Pass, "peak: %+v", peak)
			for _, r := range rows {
				if !r.Pass {
					assert.Contains(t, r.Note, "NOT MET", "a row that is not met says so")
				}
			}
		})
	}
}

func TestHighWater_reads_this_process(t *testing.T) {
	mb, err := highWater(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, mb, 1.0, "a Go test binary's peak RSS is more than a MiB")
	_, err = highWater(-1)
	assert.Error(t, err, "no such process")
}
