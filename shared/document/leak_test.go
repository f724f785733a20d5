package document_test

import (
	"testing"

	"github.com/ocrflow/ocrflow/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }
