// Package documenttest checks JSON documents in tests: against the
// published schema (docs/ocrflow-document.schema.json, JSON Schema
// 2020-12) and against what the schema cannot say — one entry per page in
// order, every box inside its page.
package documenttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/document"
)

// SchemaPath is the path of the published schema in this checkout.
func SchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "ocrflow-document.schema.json")
}

var (
	once     sync.Once
	compiled *jsonschema.Schema
	errLoad  error
)

// Schema returns the compiled published schema.
func Schema() (*jsonschema.Schema, error) {
	once.Do(func() {
		raw, err := os.ReadFile(SchemaPath())
		if err != nil {
			errLoad = fmt.Errorf("read schema: %w", err)
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			errLoad = fmt.Errorf("decode schema: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource("ocrflow-document.schema.json", doc); err != nil {
			errLoad = fmt.Errorf("add schema: %w", err)
			return
		}
		compiled, errLoad = c.Compile("ocrflow-document.schema.json")
	})
	return compiled, errLoad
}

// Validate checks raw against the published schema.
func Validate(raw []byte) error {
	sch, err := Schema()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("decode document: %w", err)
	}
	return sch.Validate(inst)
}

// Document is a decoded JSON document.
type Document struct {
	document.Header
	Pages []document.Page `json:"pages"`
}

// Check validates raw against the schema, requires one entry per page of
// wantPages in that order, and checks that every box lies inside its page.
// It returns the decoded document.
func Check(t *testing.T, raw []byte, wantPages []int) Document {
	t.Helper()
	require.NoError(t, Validate(raw), "the document does not validate against %s:\n%.2000s", SchemaPath(), raw)
	var d Document
	require.NoError(t, json.Unmarshal(raw, &d), "decode document")
	got := make([]int, len(d.Pages))
	for i, p := range d.Pages {
		got[i] = p.Page
	}
	assert.Equal(t, wantPages, got, "pages of the document, in order")
	for _, p := range d.Pages {
		for i, b := range p.Blocks {
			if b.BBox == nil {
				continue
			}
			if !assert.NotNil(t, p.WidthPt, "page %d has boxes but no size", p.Page) {
				continue
			}
			assert.True(t, b.BBox.Inside(*p.WidthPt, *p.HeightPt), "page %d block %d box %v lies outside the page (%v × %v pt)", p.Page, i, *b.BBox, *p.WidthPt, *p.HeightPt)
			for j, l := range b.Lines {
				assert.True(t, l.BBox.Inside(*p.WidthPt, *p.HeightPt), "page %d block %d line %d box %v lies outside the page", p.Page, i, j, l.BBox)
			}
		}
	}
	return d
}
