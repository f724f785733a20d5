package finalize

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

func TestPlaceInline(t *testing.T) {
	for _, tc := range []struct {
		name, pic, md, text, want string
	}{
		{
			name: "paragraph_after_the_placeholder", pic: "chart.png",
			md:   "# Figures\n\n<!-- image: chart.png -->\n\nAfter.\n",
			text: "Q1 100\nQ2 112\n",
			want: "# Figures\n\n<!-- image: chart.png -->\n\nQ1 100\nQ2 112\n\nAfter.\n",
		},
		{
			name: "table_cell_stays_on_its_row", pic: "logo.png",
			md:   "| Name | Logo |\n| --- | --- |\n| Acme | <!-- image: logo.png --> |\n",
			text: "ACME | Corp\nSince 1990",
			want: "| Name | Logo |\n| --- | --- |\n| Acme | <!-- image: logo.png --> ACME \\| Corp<br>Since 1990 |\n",
		},
		{
			name: "no_placeholder_appends_with_one", pic: "x.png",
			md:   "Text only.\n",
			text: "picture text",
			want: "Text only.\n\n<!-- image: x.png -->\n\npicture text\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, placeInline(tc.md, tc.pic, tc.text))
		})
	}
}

func TestInlined(t *testing.T) {
	ok := scratch.PageRecord{Status: events.PageOK}
	failed := scratch.PageRecord{Status: events.PageFailed}
	m := scratch.Manifest{
		Pages: []int{1, 2, 3, 5, 6},
		Inline: map[int]scratch.Inline{
			2: {Page: 1, Name: "a.png"}, 3: {Page: 1, Name: "b.png"}, // host 1 fine: both fold in, in order
			5: {Page: 4, Name: "c.png"}, // host 4 not in the page range: stays a page
			7: {Page: 6, Name: "d.png"}, // picture not in the page range: nothing to place
		},
	}
	recs := map[int]scratch.PageRecord{1: ok, 2: ok, 3: failed, 5: ok, 6: ok}
	in := inlined(m, recs)
	assert.Equal(t, []int{2, 3}, in.pictures[1], "pictures of page 1")
	assert.Equal(t, map[int]int{2: 1, 3: 1}, in.host, "pages 2 and 3 inside page 1")
	recs[1] = failed
	assert.Empty(t, inlined(m, recs).host, "nothing folded into a failed page")
}
