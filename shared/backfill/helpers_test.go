package backfill_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"github.com/tendant/simple-content/pkg/simplecontent"
	"github.com/tendant/simple-content/pkg/simplecontent/repo/memory"
	repopg "github.com/tendant/simple-content/pkg/simplecontent/repo/postgres"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/backfill"
	"github.com/ocrflow/ocrflow/shared/backfill/backfilltest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/scratch"
	ocrsc "github.com/ocrflow/ocrflow/shared/simplecontent"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler)) // simple-content's handlers log every request
	leaktest.Main(m)
}

// The current model's key and an older model's: what a model upgrade
// changes.
func currentKey(id string) string { return content.IdempotencyKey(id, "1", "model-new", "default") }
func oldKey(id string) string     { return content.IdempotencyKey(id, "1", "model-old", "default") }
func newerKey(id string) string   { return content.IdempotencyKey(id, "1", "model-next", "default") }

// repoKind names a simple-content repository the sources are tested on.
type repoKind struct {
	name string
	open func(t *testing.T) simplecontent.Repository
	// db opens the database source over the same data.
	db func(t *testing.T, repo simplecontent.Repository) *backfill.DB
}

// repos returns the memory repository and the Postgres one, on a cluster
// started for the calling test (skipped, visibly, where PostgreSQL is not
// installed).
func repos(t *testing.T) []repoKind {
	t.Helper()
	mem := repoKind{
		name: "memory",
		open: func(*testing.T) simplecontent.Repository { return memory.New() },
		db:   func(_ *testing.T, repo simplecontent.Repository) *backfill.DB { return backfill.NewDB(repo) },
	}
	var pg *backfilltest.Postgres
	if why := backfilltest.PostgresMissing(); why == "" {
		pg = backfilltest.StartPostgres(t)
	}
	n := 0
	urls := map[simplecontent.Repository]string{}
	postgres := repoKind{
		name: "postgres",
		open: func(t *testing.T) simplecontent.Repository {
			if pg == nil {
				t.Skip(backfilltest.PostgresMissing())
			}
			n++
			url := pg.ContentDatabase(t, fmt.Sprintf("content_%d", n))
			repo := repopg.NewWithPool(pgPool(t, url))
			urls[repo] = url
			return repo
		},
		db: func(t *testing.T, repo simplecontent.Repository) *backfill.DB {
			src, closeFn, err := backfill.OpenPostgres(t.Context(), urls[repo], "")
			require.NoError(t, err)
			t.Cleanup(closeFn)
			return src
		},
	}
	return []repoKind{mem, postgres}
}

// pgPool connects to url with search_path content (the schema the
// migrations created), for seeding.
func pgPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = "content"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// dryRun runs a dry-run backfill and returns the selected ids in order
// and the summary.
func dryRun(t *testing.T, src backfill.Source, f backfill.Filter, key func(string) string, batch int) ([]string, backfill.Summary) {
	t.Helper()
	var got []string
	sum, err := backfill.Run(t.Context(), backfill.Config{
		Source: src, Filter: f, Key: key, DryRun: true, Batch: batch,
		OnSelect: func(it backfill.Item) { got = append(got, it.ID) },
	})
	require.NoError(t, err)
	return got, sum
}

// idsFile writes ids, one a line, with a comment and blank lines mixed in.
func idsFile(t *testing.T, ids []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# content ids to OCR\n\n")
	for i, id := range ids {
		b.WriteString(id + "\n")
		if i%17 == 3 {
			b.WriteString("\n   \n# a comment\n")
		}
	}
	p := filepath.Join(t.TempDir(), "ids.txt")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

// client returns a v5 API client of srv.
func client(t *testing.T, srv *backfilltest.Content) *ocrsc.Client {
	t.Helper()
	c, err := ocrsc.New(ocrsc.Config{BaseURL: srv.URL, APIKey: backfilltest.APIKey, Attempts: 2, Backoff: 10 * time.Millisecond, Transfers: httpClient()})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// recorder is a Publisher that keeps what it was given, when.
type recorder struct {
	mu      sync.Mutex
	jobs    []string
	at      []time.Time
	hook    func(n int) error // called before the n-th (1-based) publish
	after   func(n int)       // called after the n-th publish
	afterID func(id string)   // called with each published job id
}

func (r *recorder) Publish(_ context.Context, e event.Event) (bool, error) {
	r.mu.Lock()
	n := len(r.jobs) + 1
	r.mu.Unlock()
	if r.hook != nil {
		if err := r.hook(n); err != nil {
			return false, err
		}
	}
	r.mu.Lock()
	r.jobs = append(r.jobs, e.ID())
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	if r.after != nil {
		r.after(n)
	}
	if r.afterID != nil {
		r.afterID(e.ID())
	}
	return false, nil
}

func newScratch() *blob.Memory { return blob.NewMemory() }

// claim claims job as an earlier submitter would have.
func claim(t *testing.T, s scratch.Store, job string) error {
	t.Helper()
	return scratch.CreateJSON(t.Context(), s, scratch.SubmittedKey(job), scratch.Submitted{SubmittedAt: time.Now(), By: "ocrflow submit", Job: []byte(`{}`)})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}
