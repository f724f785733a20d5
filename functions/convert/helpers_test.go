package convert_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/convert"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// testdata is the repository's sample corpus, the content store's root.
var testdata = filepath.Join("..", "..", "testdata")

// recipe is the recipe every test converter keys results with.
var recipe = content.Recipe{PipelineVersion: content.PipelineVersion, Engine: "fake", Model: "fake-model"}

// errBroker is the error an injected Send failure returns.
var errBroker = errors.New("broker unavailable")

// sender records the events convert publishes. When failAt is n > 0, the
// n-th Send over the sender's life fails with errBroker (and is not
// recorded).
type sender struct {
	mu     sync.Mutex
	calls  int
	failAt int
	events []event.Event
}

func (s *sender) Send(_ context.Context, e event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls == s.failAt {
		return errBroker
	}
	s.events = append(s.events, e)
	return nil
}

// take returns the events sent since the last take.
func (s *sender) take() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

// dirStore is the directory content store over testdata, counting fetches.
type dirStore struct {
	*contentdir.Store
	fetches atomic.Int32
}

func (d *dirStore) Fetch(ctx context.Context, j job.Job, dst string, maxBytes int64) (content.Source, error) {
	d.fetches.Add(1)
	return d.Store.Fetch(ctx, j, dst, maxBytes)
}

func newDirStore(t *testing.T) *dirStore {
	t.Helper()
	s, err := contentdir.New([]string{testdata}, t.TempDir())
	require.NoError(t, err)
	return &dirStore{Store: s}
}

// capableStore is a dirStore that also has the optional content-store
// capabilities: it finds existing (when set) for any job (content.Reuser)
// and records failures (content.FailureRecorder).
type capableStore struct {
	*dirStore
	existing *content.Derived

	mu       sync.Mutex
	keys     []string
	outputs  []string // the outputs each Existing asked for
	failures []content.Failure
}

var (
	_ content.Reuser          = (*capableStore)(nil)
	_ content.FailureRecorder = (*capableStore)(nil)
)

func (c *capableStore) Existing(_ context.Context, j job.Job, key string) (content.Derived, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, key)
	c.outputs = append(c.outputs, j.Hints.OutputFormat)
	if c.existing == nil {
		return content.Derived{}, false, nil
	}
	return *c.existing, true, nil
}

func (c *capableStore) RecordFailure(_ context.Context, f content.Failure) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, f)
	return nil
}

func newCapableStore(t *testing.T, existing *content.Derived) *capableStore {
	t.Helper()
	return &capableStore{dirStore: newDirStore(t), existing: existing}
}

// fixture is a converter on a memory scratch store with a recording sender.
type fixture struct {
	conv    *convert.Converter
	scratch *blob.Memory
	send    *sender
}

// baseConfig is a converter config that renders small pages fast.
func baseConfig(t *testing.T) convert.Config {
	return convert.Config{
		Target:  render.Target{LongSide: 256},
		TempDir: t.TempDir(),
		Recipe:  recipe,
	}
}

func newFixture(t *testing.T, cfg convert.Config, fetcher convert.Fetcher, send *sender) fixture {
	t.Helper()
	if send == nil {
		send = &sender{}
	}
	mem := blob.NewMemory()
	return fixture{conv: convert.New(cfg, mem, fetcher, send, slog.New(slog.DiscardHandler)), scratch: mem, send: send}
}

// contentID is the content id of the test job id.
func contentID(id string) string { return "content-" + id }

// jobEvent is the simpleprocess.job of job id for the testdata file rel.
func jobEvent(t *testing.T, id, rel string, hints map[string]string) event.Event {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(testdata, rel))
	require.NoError(t, err)
	e, err := job.NewEvent(job.Spec{ID: id, ContentID: contentID(id), Location: abs, Name: filepath.Base(rel), Hints: hints})
	require.NoError(t, err)
	return e
}

// ofType returns the events of type typ.
func ofType(evs []event.Event, typ string) []event.Event {
	var out []event.Event
	for _, e := range evs {
		if e.Type() == typ {
			out = append(out, e)
		}
	}
	return out
}

// rendered decodes the ocr.page.rendered events among evs, in order.
func rendered(t *testing.T, evs []event.Event) []events.PageRendered {
	t.Helper()
	var out []events.PageRendered
	for _, e := range ofType(evs, events.TypePageRendered) {
		var p events.PageRendered
		require.NoError(t, events.Decode(e, &p))
		out = append(out, p)
	}
	return out
}

// pageNumbers lists the pages of ps in order.
func pageNumbers(ps []events.PageRendered) []int {
	out := []int{}
	for _, p := range ps {
		out = append(out, p.Page)
	}
	return out
}

// manifest reads job's manifest from the scratch store.
func manifest(t *testing.T, s scratch.Store, id string) scratch.Manifest {
	t.Helper()
	var m scratch.Manifest
	require.NoError(t, scratch.GetJSON(context.Background(), s, scratch.ManifestKey(id), &m))
	return m
}

// overTheWire returns e as the transport hands it to the next delivery.
func overTheWire(t *testing.T, e event.Event) event.Event {
	t.Helper()
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var out event.Event
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// fileSize is the size of the testdata file rel.
func fileSize(t *testing.T, rel string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(testdata, rel))
	require.NoError(t, err)
	return st.Size()
}
