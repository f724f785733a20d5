package events_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events/internal/catalogue"
)

// TestCatalogue_is_current regenerates the event catalogue in memory and
// compares it with the one committed in docs/architecture.md.
func TestCatalogue_is_current(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	want, err := catalogue.Generate(".", triggers)
	require.NoError(t, err)
	doc, err := os.ReadFile("../../docs/architecture.md")
	require.NoError(t, err)
	got, err := catalogue.Current(doc)
	require.NoError(t, err)
	if !bytes.Equal(bytes.TrimSpace(want), got) {
		t.Fatal("the event catalogue in docs/architecture.md is stale: run `go generate ./shared/events/` and commit the result")
	}
}
