package blob_test

import (
	"testing"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/scratch/scratchtest"
)

func TestMemoryConformance(t *testing.T) {
	scratchtest.Run(t, func(t *testing.T) scratchtest.Store { return blob.NewMemory() })
}
