package app_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// TestPipeline_long_documents_are_converted_in_slices: with a slice so
// short that every convert delivery renders one page, each delivery hands
// the rest on through ocr.convert.continue, and the job still ends with
// every page once, in order, one started event and one stored result.
func TestPipeline_long_documents_are_converted_in_slices(t *testing.T) {
	h := newHarness(t, harnessOpts{env: map[string]string{"CONVERT_SLICE": "1ns"}})
	continues := make(chan *nats.Msg, 64)
	sub, err := h.rt.Conn().ChanSubscribe(events.TypeConvertContinue, continues)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()

	for _, tc := range []struct {
		name, file string
		hints      map[string]string
		pages      []int // pages expected in the result, in order
	}{
		{"six_page_pdf", "report.pdf", map[string]string{"text_layer": "off"}, []int{1, 2, 3, 4, 5, 6}},
		{"page_range_hint", "report.pdf", map[string]string{"text_layer": "off", "pages": "2,4-5"}, []int{2, 4, 5}},
		{"text_layer_pages", "report.pdf", nil, []int{1, 2, 3, 4, 5, 6}},
		{"single_page_needs_no_continuation", "page.png", nil, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "slice-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(id, tc.file, tc.hints)
			evs := h.wait(id)
			got := types(evs)
			assert.Equal(t, events.TypeJobStarted, got[0], "lifecycle %v, want exactly one started, first", got)
			assert.Equal(t, 1, strings.Count(strings.Join(got, " "), events.TypeJobStarted), "lifecycle %v, want exactly one started, first", got)
			c := completed(t, evs[len(evs)-1])
			assert.Equal(t, len(tc.pages), c.PageCount, "completed = %+v", c)
			assert.Empty(t, c.FailedPages, "completed = %+v", c)
			md, err := os.ReadFile(c.DerivedContentID)
			require.NoError(t, err)
			// OCRed pages carry the fake engine's per-image text; text-layer
			// pages their own headings.
			all := expectedPages(t, tc.file)
			var want []string
			for _, n := range tc.pages {
				if tc.hints["text_layer"] == "off" || tc.file != "report.pdf" {
					want = append(want, all[n-1])
				} else {
					want = append(want, fmt.Sprintf("# Page %d:", n))
				}
			}
			assertInOrderOnce(t, string(md), want)
			assert.Equal(t, 1, h.content.count(id), "times the result was stored")
			// One continuation per page after the first, each naming the
			// next index; none for a one-page job.
			seen := map[string]bool{}
			timeout := time.After(10 * time.Second)
		collect:
			for len(seen) < len(tc.pages)-1 {
				select {
				case m := <-continues:
					e, err := standalone.Decode(m.Header, m.Data)
					require.NoError(t, err)
					if e.Extensions()[events.ExtJob] == id {
						seen[e.ID()] = true
					}
				case <-timeout:
					assert.Failf(t, "continuations missing", "saw continuations %v of %s, want %d", seen, id, len(tc.pages)-1)
					break collect
				}
			}
			for i := 1; i < len(tc.pages); i++ {
				assert.True(t, seen[events.ContinueID(id, i)], "no continuation %s among %v", events.ContinueID(id, i), seen)
			}
		})
	}
}
