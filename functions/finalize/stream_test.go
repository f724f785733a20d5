package finalize_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/events"
	ocrjob "github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// watched is a scratch store that measures how far the assembly of a
// document reads ahead of what it writes: for each output it streams
// (result.md, result.json), the bytes of page objects read so far (page
// markdown for the one, layout sidecars for the other) minus the bytes of
// the output written so far, at its largest.
type watched struct {
	scratch.Store
	mu sync.Mutex
	// read counts the bytes read of each kind of page object.
	read map[string]int64
	// written counts the bytes of each output written so far.
	written map[string]int64
	// ahead is the largest read-minus-written seen, per output key.
	ahead map[string]int64
	// source maps an output key to the kind of page object it is made of.
	source map[string]string
}

func newWatched(s scratch.Store, job string) *watched {
	return &watched{
		Store: s, read: map[string]int64{}, written: map[string]int64{}, ahead: map[string]int64{},
		source: map[string]string{scratch.ResultKey(job): "md", scratch.DocumentKey(job): "blocks"},
	}
}

// kind is the kind of page object key is ("md", "blocks") or "".
func kind(key string) string {
	switch {
	case strings.Contains(key, "/pages/") && strings.HasSuffix(key, ".md"):
		return "md"
	case strings.Contains(key, "/blocks/"):
		return "blocks"
	}
	return ""
}

func (w *watched) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := w.Store.Get(ctx, key)
	if err != nil || kind(key) == "" {
		return rc, err
	}
	return counting{ReadCloser: rc, add: func(n int) {
		w.mu.Lock()
		w.read[kind(key)] += int64(n)
		w.mu.Unlock()
	}}, nil
}

func (w *watched) Put(ctx context.Context, key string, r io.Reader) error {
	src, ok := w.source[key]
	if !ok {
		return w.Store.Put(ctx, key, r)
	}
	return w.Store.Put(ctx, key, counting{ReadCloser: io.NopCloser(r), add: func(n int) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.written[key] += int64(n)
		w.ahead[key] = max(w.ahead[key], w.read[src]-w.written[key])
	}})
}

// counting reports the bytes read through it.
type counting struct {
	io.ReadCloser
	add func(int)
}

func (c counting) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.add(n)
	return n, err
}

// streamingStorer is a content store that reads every output as a
// stream, checking its size and digest, and keeps only their sizes.
type streamingStorer struct {
	held  []string // formats handed over as bytes in memory
	sizes map[string]int64
}

func (s *streamingStorer) Store(ctx context.Context, r content.Result) (string, error) {
	st, err := s.StoreOutputs(ctx, r)
	return st.Ref, err
}

func (s *streamingStorer) StoreOutputs(ctx context.Context, r content.Result) (content.Stored, error) {
	s.sizes = map[string]int64{}
	st := content.Stored{Refs: map[string]string{}}
	for _, o := range r.Files() {
		if o.Data != nil || o.Open == nil {
			s.held = append(s.held, o.Format)
		}
		rc, err := o.Reader(ctx)
		if err != nil {
			return content.Stored{}, err
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		_ = rc.Close()
		if err != nil {
			return content.Stored{}, err
		}
		if n != o.Size || hex.EncodeToString(h.Sum(nil)) != o.SHA256 {
			return content.Stored{}, fmt.Errorf("%s output: %d bytes, want %d with its digest", o.Format, n, o.Size)
		}
		s.sizes[o.Format] = n
		st.Refs[o.Format] = "derived-" + o.Format
	}
	st.Ref = st.Refs[ocrjob.OutputMarkdown]
	return st, nil
}

// TestFinalize_assembly_streams_page_by_page fails when the assembly of a
// document reads every page into memory before writing it: a document of
// large pages is assembled, and at no moment may the page text read run
// more than about one page ahead of the document written, for the
// markdown and the JSON document alike; and every output reaches the
// content store as a stream, not as bytes held in memory.
func TestFinalize_assembly_streams_page_by_page(t *testing.T) {
	const (
		pages    = 24
		pageSize = 128 << 10 // larger than any buffer on the way
	)
	for _, tc := range []struct {
		name    string
		outputs []string
	}{
		{name: "markdown", outputs: []string{ocrjob.OutputMarkdown}},
		{name: "markdown_and_json", outputs: []string{ocrjob.OutputMarkdown, ocrjob.OutputJSON}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := make([]int, pages)
			for i := range ns {
				ns[i] = i + 1
			}
			j := newJob(t, "job-stream-"+tc.name, ns, func(m *scratch.Manifest) { m.Outputs = tc.outputs })
			var last event.Event
			for _, n := range ns {
				text := fmt.Sprintf("Page %d. %s", n, strings.Repeat("lorem ipsum ", pageSize/12))
				l := &document.Layout{Page: n, Source: document.SourceMarkdown, Blocks: []document.Block{{Label: document.LabelText, Text: text}}}
				last = j.finishWith(t, scratch.PageRecord{Page: n, Status: events.PageOK, Route: events.RouteOCR, Engine: "vllm"}, text, l)
			}
			w := newWatched(j.store, j.id)
			st := &streamingStorer{}
			reply, err := newFinalizerOn(w, st).Handle(t.Context(), last)
			require.NoError(t, err)
			completed(t, reply)

			total := int64(pages * pageSize)
			for _, key := range []string{scratch.ResultKey(j.id), scratch.DocumentKey(j.id)} {
				if key == scratch.DocumentKey(j.id) && len(tc.outputs) == 1 {
					continue
				}
				src := w.source[key]
				require.Greater(t, w.read[src], total, "%s: every page's %s was read", key, src)
				require.Greater(t, w.written[key], total, "%s: the whole document was written", key)
				assert.Less(t, w.ahead[key], int64(2*pageSize),
					"%s: %d bytes of pages were read ahead of the document written (of %d in all): the assembly holds the pages in memory instead of streaming them",
					key, w.ahead[key], w.read[src])
			}
			assert.Empty(t, st.held, "outputs handed to the content store as bytes in memory instead of streams")
			for _, f := range tc.outputs {
				assert.Greater(t, st.sizes[f], total, "%s output stored whole", f)
			}
		})
	}
}
