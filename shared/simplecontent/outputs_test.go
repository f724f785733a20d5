package simplecontent_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
)

// withOutputs is result() with the given outputs; the PDF, when asked
// for, is read through Open (a stream, as finalize hands it over).
func withOutputs(jobID, parent string, formats ...string) content.Result {
	r := result(jobID, parent, "# "+jobID)
	for _, f := range formats {
		switch f {
		case job.OutputMarkdown:
			r.Outputs = append(r.Outputs, content.NewOutput(f, r.Markdown))
		case job.OutputJSON:
			r.Outputs = append(r.Outputs, content.NewOutput(f, []byte(`{"job_id":"`+jobID+`"}`)))
		case job.OutputPDF:
			pdf := []byte("%PDF-1.7 " + jobID)
			o := content.NewOutput(f, nil)
			o.Data, o.Size, o.SHA256 = nil, int64(len(pdf)), ""
			o.Open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(pdf)), nil }
			r.Outputs = append(r.Outputs, o)
		}
	}
	return r
}

func TestStore_StoreOutputs_makes_one_derived_content_per_output(t *testing.T) {
	s, cl := newStore(t)
	parent := upload(t, cl, "scan.pdf", "application/pdf", "%PDF")
	r := withOutputs("j1", parent, job.OutputMarkdown, job.OutputJSON, job.OutputPDF)
	st, err := s.StoreOutputs(t.Context(), r)
	require.NoError(t, err)
	require.Len(t, st.Refs, 3, "refs = %v", st.Refs)
	assert.Equal(t, st.Refs[job.OutputMarkdown], st.Ref, "the reference is the markdown's")
	for _, tc := range []struct {
		format, variant, mime, name, body string
	}{
		{job.OutputMarkdown, "ocr_markdown", "text/markdown", "scan.pdf.md", "# j1"},
		{job.OutputJSON, "ocr_json", "application/json", "scan.pdf.json", `{"job_id":"j1"}`},
		{job.OutputPDF, "ocr_pdf", "application/pdf", "scan.pdf.ocr.pdf", "%PDF-1.7 j1"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			id := st.Refs[tc.format]
			require.NotEmpty(t, id)
			var c simplecontent.Content
			for _, d := range count(t, cl, parent) {
				if d.ID == id {
					c = d
				}
			}
			require.Equal(t, id, c.ID, "a derived content of the source")
			assert.Equal(t, simplecontent.StatusUploaded, c.Status)
			m, err := cl.GetMetadata(t.Context(), id)
			require.NoError(t, err)
			assert.Equal(t, tc.mime, m.ContentType)
			assert.Equal(t, tc.name, m.FileName)
			assert.Equal(t, int64(len(tc.body)), m.FileSize)
			assert.Equal(t, tc.variant, m.Custom[simplecontent.MetaVariant])
			assert.Equal(t, tc.format, m.Custom[simplecontent.MetaFormat])
			assert.Equal(t, r.IdempotencyKey, m.Custom[simplecontent.MetaIdempotencyKey], "every output carries the job's key")
			assert.Equal(t, []any{"markdown", "json", "pdf"}, m.Custom[simplecontent.MetaOutputs])
			assert.EqualValues(t, 2, m.Custom["page_count"], "the result's metadata")
			assert.Equal(t, tc.body, download(t, cl, id))
		})
	}
	again, err := s.StoreOutputs(t.Context(), r)
	require.NoError(t, err)
	assert.Equal(t, st, again, "storing the same job again: the same derived contents")
	assert.Len(t, count(t, cl, parent), 3, "derived contents after storing the same job twice")
}

func TestStore_StoreOutputs_supersedes_each_output_of_the_same_key(t *testing.T) {
	s, cl := newStore(t)
	parent := upload(t, cl, "scan.pdf", "application/pdf", "%PDF")
	first, err := s.StoreOutputs(t.Context(), withOutputs("j1", parent, job.OutputMarkdown, job.OutputJSON))
	require.NoError(t, err)
	second, err := s.StoreOutputs(t.Context(), withOutputs("j2", parent, job.OutputJSON))
	require.NoError(t, err)
	state := func(id string) any {
		m, err := cl.GetMetadata(t.Context(), id)
		require.NoError(t, err)
		return m.Custom[simplecontent.MetaState]
	}
	assert.Equal(t, simplecontent.StateSuperseded, state(first.Refs[job.OutputJSON]), "the older json is superseded by the newer")
	assert.Equal(t, simplecontent.StateCompleted, state(first.Refs[job.OutputMarkdown]), "the markdown has no newer one: still current")
	assert.Equal(t, simplecontent.StateCompleted, state(second.Refs[job.OutputJSON]))
	assert.Equal(t, second.Refs[job.OutputJSON], second.Ref, "without markdown the reference is the first output's")
}

func TestStore_Existing_wants_every_output_the_job_asks_for(t *testing.T) {
	s, cl := newStore(t)
	parent := upload(t, cl, "scan.pdf", "application/pdf", "%PDF")
	stored, err := s.StoreOutputs(t.Context(), withOutputs("j1", parent, job.OutputMarkdown, job.OutputJSON))
	require.NoError(t, err)
	docx := upload(t, cl, "notes.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "PK")
	office := withOutputs("j2", docx, job.OutputMarkdown)
	office.IdempotencyKey = content.IdempotencyKey(docx, "1", "m", "default")
	office.Unavailable = map[string]string{job.OutputPDF: "office documents have no page images"}
	officeStored, err := s.StoreOutputs(t.Context(), office)
	require.NoError(t, err)
	key := withOutputs("x", parent).IdempotencyKey
	for _, tc := range []struct {
		name     string
		parent   string
		key      string
		outputs  string // the job's output_format hint
		wantOK   bool
		wantRefs map[string]string
	}{
		{"markdown_by_default", parent, key, "", true, map[string]string{"markdown": stored.Refs["markdown"]}},
		{"markdown_and_json", parent, key, "markdown,json", true, stored.Refs},
		{"json_alone", parent, key, "json", true, map[string]string{"json": stored.Refs["json"]}},
		{"pdf_never_made", parent, key, "markdown,pdf", false, nil},
		{"pdf_recorded_unavailable_is_not_waited_for", docx, office.IdempotencyKey, "markdown,pdf", true, officeStored.Refs},
		{"pdf_alone_unavailable_is_nothing_to_reuse", docx, office.IdempotencyKey, "pdf", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := job.Job{ID: "j9", ContentID: tc.parent, TenantID: tenant, Hints: job.Hints{OutputFormat: tc.outputs}}
			d, ok, err := s.Existing(t.Context(), j, tc.key)
			require.NoError(t, err)
			require.Equal(t, tc.wantOK, ok, "Existing = %+v", d)
			if !ok {
				return
			}
			assert.Equal(t, tc.wantRefs, d.Refs, "refs")
			first := tc.wantRefs[strings.Split(tc.outputs+",", ",")[0]]
			if tc.outputs == "" || strings.HasPrefix(tc.outputs, "markdown") {
				first = tc.wantRefs["markdown"]
			}
			assert.Equal(t, first, d.Ref, "the reference: the markdown's, else the first output's")
		})
	}
}
