package document_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/document/documenttest"
)

func TestScale_Box(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scale document.Scale
		px    [4]int
		want  document.Box
	}{
		{"letter_at_144_dpi_halves", document.Scale{WidthPx: 1224, HeightPx: 1584, WidthPt: 612, HeightPt: 792}, [4]int{100, 200, 1124, 300}, document.Box{50, 100, 562, 150}},
		{"x_and_y_scale_apart", document.Scale{WidthPx: 1000, HeightPx: 500, WidthPt: 500, HeightPt: 1000}, [4]int{10, 10, 20, 20}, document.Box{5, 20, 10, 40}},
		{"a4_rounds_to_hundredths", document.Scale{WidthPx: 1191, HeightPx: 1684, WidthPt: 595, HeightPt: 842}, [4]int{1, 1, 1190, 1683}, document.Box{0.5, 0.5, 594.5, 841.5}},
		{"corners_out_of_order_are_ordered", document.Scale{WidthPx: 100, HeightPx: 100, WidthPt: 100, HeightPt: 100}, [4]int{50, 60, 10, 20}, document.Box{10, 20, 50, 60}},
		{"box_past_the_edge_is_clamped", document.Scale{WidthPx: 100, HeightPx: 100, WidthPt: 72, HeightPt: 72}, [4]int{-5, 90, 120, 101}, document.Box{0, 64.8, 72, 72}},
		{"no_pixel_size_is_points_already", document.Scale{}, [4]int{1, 2, 3, 4}, document.Box{1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.scale.Box(tc.px))
		})
	}
}

func TestEngineLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"title", document.LabelTitle}, {"sub_title", document.LabelTitle}, {"text", document.LabelText},
		{"table", document.LabelTable}, {"equation", document.LabelFormula}, {"image", document.LabelFigure},
		{"image_caption", document.LabelCaption}, {"table_caption", document.LabelCaption},
		{"page_header", document.LabelHeader}, {"page_footer", document.LabelFooter}, {"", document.LabelText},
		{"something_new", document.LabelText},
	} {
		t.Run("label_"+tc.in, func(t *testing.T) {
			assert.Equal(t, tc.want, document.EngineLabel(tc.in))
		})
	}
}

func TestFromMarkdown(t *testing.T) {
	type b struct{ label, text string }
	for _, tc := range []struct {
		name string
		md   string
		want []b
	}{
		{"heading_and_paragraphs", "# Title\n\nFirst line\nsecond line\n\nAnother.", []b{
			{"title", "# Title"}, {"text", "First line\nsecond line"}, {"text", "Another."},
		}},
		{"heading_glued_to_its_paragraph", "## Section\nBody text", []b{{"title", "## Section"}, {"text", "Body text"}}},
		{"each_list_item_is_a_block", "- one\n- two\n  continued\n3. three", []b{
			{"list_item", "- one"}, {"list_item", "- two\n  continued"}, {"list_item", "3. three"},
		}},
		{"pipe_table_is_one_block", "| a | b |\n| --- | --- |\n| 1 | 2 |", []b{{"table", "| a | b |\n| --- | --- |\n| 1 | 2 |"}}},
		{"html_table_with_blank_lines_is_one_block", "<table>\n<tr><td>a</td></tr>\n\n<tr><td>b</td></tr>\n</table>\n\nafter", []b{
			{"table", "<table>\n<tr><td>a</td></tr>\n\n<tr><td>b</td></tr>\n</table>"}, {"text", "after"},
		}},
		{"formula", "$$\nx^2\n$$", []b{{"formula", "$$\nx^2\n$$"}}},
		{"office_picture_placeholder_is_a_figure", "<!-- image: image1.png -->", []b{{"figure", "<!-- image: image1.png -->"}}},
		{"markdown_image_is_a_figure", "![](images/1_0.jpg)", []b{{"figure", "![](images/1_0.jpg)"}}},
		{"empty_page_has_no_blocks", "\n\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []b
			for _, blk := range document.FromMarkdown(tc.md) {
				assert.Nil(t, blk.BBox, "markdown blocks have no geometry")
				got = append(got, b{blk.Label, blk.Text})
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func sampleHeader() document.Header {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return document.Header{
		JobID: "j1", Source: document.Source{Name: "scan.pdf", Format: "pdf", PageCount: 2, TotalPages: 3},
		Engine: "tesseract", Model: "tesseract:eng", Mode: "default", PipelineVersion: "1",
		Timings: document.Timings{Started: start, Finished: start.Add(1500 * time.Millisecond), ProcessingMS: 1500},
	}
}

func TestWriter_streams_a_valid_document(t *testing.T) {
	conf := 0.93
	box := document.Box{72, 72, 300, 90}
	for _, tc := range []struct {
		name  string
		pages []document.Page
	}{
		{"text_and_ocr_pages", []document.Page{
			document.PageFrom(1, document.RouteText, &document.Layout{Page: 1, WidthPt: 612, HeightPt: 792, Source: document.SourceTextLayer,
				Blocks: []document.Block{{Label: document.LabelTitle, BBox: &box, Text: "# <Intro>", Lines: []document.Line{{BBox: box, Text: "Intro"}}}}}),
			document.PageFrom(3, document.RouteGPU, &document.Layout{Page: 3, WidthPt: 612, HeightPt: 792, WidthPx: 1224, HeightPx: 1584, Source: document.SourceTesseract,
				Steps: []string{"loop", "empty"}, Meta: map[string]string{"primary_language": "en"},
				Blocks: []document.Block{{Label: document.LabelText, BBox: &box, Text: "words", Confidence: &conf}}}),
		}},
		{"failed_and_office_pages", []document.Page{
			func() document.Page {
				p := document.PageFrom(1, document.RouteFailed, nil)
				p.FailureReason = "permanent: broken"
				return p
			}(),
			func() document.Page {
				p := document.PageFrom(2, document.RouteText, &document.Layout{Source: document.SourceOffice, Blocks: document.FromMarkdown("# A\n\n- b")})
				p.Inline = &document.Inline{Page: 1, Name: "image1.png"}
				return p
			}(),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := document.NewWriter(&buf, sampleHeader())
			require.NoError(t, err)
			want := make([]int, 0, len(tc.pages))
			for _, p := range tc.pages {
				require.NoError(t, w.Page(p))
				want = append(want, p.Page)
			}
			require.NoError(t, w.Close())
			d := documenttest.Check(t, buf.Bytes(), want)
			assert.Equal(t, document.SchemaVersion, d.SchemaVersion)
			assert.Equal(t, sampleHeader().Timings, d.Timings, "timings survive the trip")
			assert.NotContains(t, buf.String(), `\u003c`, "markdown is written with its < and > as they are")
			require.ErrorContains(t, w.Page(tc.pages[0]), "closed", "a page after Close")
		})
	}
}

func TestValidate_rejects_what_the_schema_forbids(t *testing.T) {
	valid := func() map[string]any {
		var buf bytes.Buffer
		w, err := document.NewWriter(&buf, sampleHeader())
		require.NoError(t, err)
		box := document.Box{1, 2, 3, 4}
		require.NoError(t, w.Page(document.PageFrom(1, document.RouteGPU, &document.Layout{WidthPt: 10, HeightPt: 10,
			Blocks: []document.Block{{Label: document.LabelText, BBox: &box, Text: "x"}}})))
		require.NoError(t, w.Close())
		var m map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
		return m
	}
	block := func(m map[string]any) map[string]any {
		return m["pages"].([]any)[0].(map[string]any)["blocks"].([]any)[0].(map[string]any)
	}
	for _, tc := range []struct {
		name   string
		mutate func(m map[string]any)
	}{
		{"unknown_label", func(m map[string]any) { block(m)["label"] = "paragraph" }},
		{"box_with_three_numbers", func(m map[string]any) { block(m)["bbox"] = []any{1, 2, 3} }},
		{"negative_coordinate", func(m map[string]any) { block(m)["bbox"] = []any{-1, 2, 3, 4} }},
		{"confidence_above_one", func(m map[string]any) { block(m)["confidence"] = 93 }},
		{"unknown_route", func(m map[string]any) { m["pages"].([]any)[0].(map[string]any)["route"] = "ocr" }},
		{"other_schema_version", func(m map[string]any) { m["schema_version"] = "2" }},
		{"no_pages", func(m map[string]any) { m["pages"] = []any{} }},
		{"unknown_field", func(m map[string]any) { m["extra"] = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			raw, err := json.Marshal(m)
			require.NoError(t, err)
			require.NoError(t, documenttest.Validate(raw), "the unmutated document")
			tc.mutate(m)
			raw, err = json.Marshal(m)
			require.NoError(t, err)
			assert.Error(t, documenttest.Validate(raw))
		})
	}
}

// failing is a writer that fails after n bytes.
type failing struct{ n int }

func (f *failing) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriter_reports_write_errors(t *testing.T) {
	for _, tc := range []struct {
		name          string
		budget        int
		wantHeaderErr bool
	}{
		{"header_fails", 10, true},
		{"page_fails", 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := document.NewWriter(&failing{n: tc.budget}, sampleHeader())
			if tc.wantHeaderErr {
				assert.ErrorContains(t, err, "disk full")
				return
			}
			require.NoError(t, err, "header")
			err = w.Page(document.PageFrom(1, document.RouteText, &document.Layout{Blocks: document.FromMarkdown(string(bytes.Repeat([]byte("word "), 200)))}))
			assert.ErrorContains(t, err, "disk full")
			assert.ErrorContains(t, w.Close(), "disk full", "Close after a failed page")
		})
	}
}
