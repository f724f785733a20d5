package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tendant/simple-content/pkg/simplecontent/repo/memory"
	repopg "github.com/tendant/simple-content/pkg/simplecontent/repo/postgres"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/backfill"
	"github.com/ocrflow/ocrflow/shared/backfill/backfilltest"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// bfEnv isolates a backfill test: its own scratch store, the fake engine
// (the recipe the keys come from) and a NATS server on a loopback port
// whose URL it returns.
func bfEnv(t *testing.T) (natsURL string) {
	t.Helper()
	isolate(t)
	quiet(t)
	t.Setenv("LOG_LEVEL", "warn") // the interrupt notices are warnings
	t.Setenv("OCR_ENGINE", "fake")
	t.Setenv("BLOB_URL", "file://"+filepath.Join(t.TempDir(), "blobs"))
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

// quiet silences simple-content's handlers, which log every request to
// the default logger, for the test.
func quiet(t *testing.T) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { slog.SetDefault(prev) })
}

// bfKey is the idempotency key the backfill computes under the test's
// configuration.
func bfKey(t *testing.T) func(string) string {
	t.Helper()
	cfg, err := config.Load()
	require.NoError(t, err)
	r := app.RecipeFor(cfg, "")
	return func(id string) string { return r.Key(id, "") }
}

// bfPostgres starts a cluster with simple-content's schema and returns
// its URL and the repository on it.
func bfPostgres(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	pg := backfilltest.StartPostgres(t)
	url := pg.ContentDatabase(t, "content")
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = "content"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return url, pool
}

// streamJobIDs returns the ids of the job events in the stream at url.
func streamJobIDs(t *testing.T, url string) []string {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, standalone.DefaultStream)
	require.NoError(t, err)
	// Jobs of every lane: ocr.jobs (normal), ocr.jobs.high, ocr.jobs.low.
	subjects := []string{standalone.DefaultJobSubject, standalone.DefaultJobSubject + ".>"}
	total := 0
	for _, subject := range subjects {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
		require.NoError(t, err)
		for _, n := range info.State.Subjects {
			total += int(n)
		}
	}
	if total == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	require.NoError(t, err)
	var ids []string
	for len(ids) < total {
		batch, err := cons.Fetch(total-len(ids), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		n := 0
		for msg := range batch.Messages() {
			n++
			e, err := standalone.Decode(msg.Headers(), msg.Data())
			require.NoError(t, err)
			ids = append(ids, e.ID())
		}
		require.NoError(t, batch.Error())
		require.NotZero(t, n, "read %d of %d job events", len(ids), total)
	}
	return ids
}

func TestBackfill_usage_errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no_source", nil, "give one source"},
		{"two_sources", []string{"--database-url", "postgres://x/y", "--ids-from", "ids.txt"}, "give one source"},
		{"two_transports", []string{"--ids-from", "ids.txt", "--nats", "nats://x", "--broker", "http://y"}, "not both"},
		{"resume_without_checkpoint", []string{"--ids-from", "ids.txt", "--resume"}, "--resume needs --checkpoint"},
		{"dry_run_with_checkpoint", []string{"--ids-from", "ids.txt", "--dry-run", "--checkpoint", "cp.json"}, "writes no checkpoint"},
		{"bad_date", []string{"--ids-from", "ids.txt", "--created-after", "last tuesday"}, "is not a date"},
		{"ids_without_simple_content", []string{"--ids-from", "ids.txt"}, "SIMPLE_CONTENT_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			t.Setenv("SIMPLE_CONTENT_URL", "")
			t.Setenv("DATABASE_URL", "")
			var stdout, stderr syncBuffer
			code := run(t.Context(), append([]string{"backfill"}, tc.args...), &stdout, &stderr)
			assert.NotZero(t, code)
			assert.Contains(t, stderr.String(), tc.want)
		})
	}
}

func TestBackfill_help_documents_the_flags(t *testing.T) {
	var stdout, stderr syncBuffer
	require.Equal(t, 0, run(t.Context(), []string{"backfill", "--help"}, &stdout, &stderr))
	for _, f := range []string{"-database-url", "-ids-from", "-tenant", "-owner", "-mime", "-created-after", "-created-before",
		"-status", "-missing-ocr", "-stale", "-priority", "-nats", "-broker", "-rate", "-max-pending", "-dry-run",
		"-pages-per-second", "-checkpoint", "-resume", "-json", "-limit"} {
		assert.Contains(t, stderr.String(), f)
	}
	var out, errb syncBuffer
	require.Equal(t, 0, run(t.Context(), []string{"--help"}, &out, &errb))
	assert.Contains(t, out.String(), "ocrflow backfill")
}

// TestBackfill_dry_run_json runs a dry run over the id list (the v5 API
// over a seeded memory repository) and checks its JSON against the data.
func TestBackfill_dry_run_json(t *testing.T) {
	bfEnv(t)
	key := bfKey(t)
	old := func(id string) string { return "ocr|" + id + "|v0|older|default" }
	repo := memory.New()
	fx := backfilltest.Seed(t, repo, 60, key, old)
	srv := backfilltest.StartContent(t, repo)
	t.Setenv("SIMPLE_CONTENT_URL", srv.URL)
	t.Setenv("SIMPLE_CONTENT_API_KEY", backfilltest.APIKey)
	var ids strings.Builder
	for _, c := range fx.Contents {
		ids.WriteString(c.ID + "\n")
	}
	list := filepath.Join(t.TempDir(), "ids.txt")
	require.NoError(t, os.WriteFile(list, []byte(ids.String()), 0o600))

	images := fx.IDs(func(c backfilltest.Seeded) bool {
		return !c.Deleted && c.Status == simplecontent.StatusUploaded && strings.HasPrefix(c.MIME, "image/") && !c.Current
	})
	require.NotEmpty(t, images)
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"backfill", "--ids-from", list, "--mime", "image/*", "--dry-run", "--json", "--pages-per-second", "1"}, &stdout, &stderr)
	require.Equal(t, 0, code, "stderr:\n%s", stderr.String())
	var sum backfill.Summary
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &sum), "stdout:\n%s", stdout.String())
	assert.True(t, sum.DryRun)
	assert.Equal(t, int64(len(fx.Contents)), sum.Scanned)
	assert.Equal(t, int64(len(images)), sum.Selected)
	require.NotNil(t, sum.Estimate)
	assert.Equal(t, int64(len(images)), sum.Estimate.Documents)
	assert.Equal(t, int64(len(images)), sum.Estimate.Pages, "an image is a page")
	assert.InDelta(t, float64(len(images))/3600, sum.Estimate.GPUHours, 1e-9)
	var size int64
	for _, id := range images {
		c, _ := fx.ByID(id)
		size += c.Size
	}
	assert.Equal(t, size, sum.Estimate.Bytes)
	assert.Zero(t, sum.Submitted)

	// --list prints what would be submitted, one id a line.
	var listed, lerr syncBuffer
	require.Equal(t, 0, run(t.Context(), []string{"backfill", "--ids-from", list, "--mime", "image/*", "--dry-run", "--list"}, &listed, &lerr), lerr.String())
	assert.ElementsMatch(t, images, strings.Fields(listed.String()))
	assert.Contains(t, lerr.String(), "estimate:", "the summary goes to standard error")
}

// TestBackfill_end_to_end_50_documents_complete uploads 50 documents to
// simple-content (v5 over PostgreSQL), serves the pipeline on it, and
// backfills them from the database: all 50 jobs complete, live jobs
// submitted while the backfill's queue waits finish before it drains (the
// priority lanes), and a second backfill finds nothing left to do.
func TestBackfill_end_to_end_50_documents_complete(t *testing.T) {
	natsURL := bfEnv(t)
	dbURL, pool := bfPostgres(t)
	srv := backfilltest.StartContent(t, repopg.NewWithPool(pool))
	for k, v := range map[string]string{
		"NATS_URL": natsURL, "DATABASE_URL": dbURL, "CONTENT_STORE": "simple-content",
		"SIMPLE_CONTENT_URL": srv.URL, "SIMPLE_CONTENT_API_KEY": backfilltest.APIKey,
		"S3_ENDPOINT": srv.S3URL, "S3_PATH_STYLE": "true", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"CONVERT_WORKERS": "2",
	} {
		t.Setenv(k, v)
	}
	api, err := simplecontent.New(simplecontent.Config{BaseURL: srv.URL, APIKey: backfilltest.APIKey,
		Transfers: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}})
	require.NoError(t, err)
	defer api.CloseIdleConnections()
	samples := []struct{ file, mime string }{{"report.pdf", "application/pdf"}, {"page.png", "image/png"}}
	contents := map[string]bool{}
	for i := range 50 {
		s := samples[i%2]
		b, err := os.ReadFile(testdata(t, s.file))
		require.NoError(t, err)
		id, err := api.UploadFile(t.Context(), simplecontent.NewFile{
			OwnerID: backfilltest.Owners[i%4], OwnerType: "user", TenantID: backfilltest.Tenants[i%3],
			FileName: fmt.Sprintf("%02d-%s", i, s.file), MimeType: s.mime, DocumentType: "document",
		}, strings.NewReader(string(b)), int64(len(b)))
		require.NoError(t, err)
		contents[id] = true
	}

	ctx, stop := context.WithCancel(t.Context())
	served := make(chan int, 1)
	var serveOut syncBuffer
	go func() { served <- run(ctx, []string{"serve"}, &serveOut, &serveOut) }()
	defer func() {
		stop()
		select {
		case <-served:
		case <-time.After(60 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	rt, err := standalone.New(t.Context(), standalone.Config{URL: natsURL})
	require.NoError(t, err)
	defer func() { assert.NoError(t, rt.Close(context.Background())) }()
	lifecycle, err := rt.Follow(ctx, standalone.LifecycleSubjects)
	require.NoError(t, err)

	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"backfill", "--json", "--rate", "0", "--batch", "20"}, &stdout, &stderr)
	require.Equal(t, 0, code, "stderr:\n%s", stderr.String())
	var sum backfill.Summary
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &sum))
	assert.Equal(t, int64(50), sum.Submitted)

	// Live jobs arrive while the backfill's 50 wait in the low lane.
	png, err := os.ReadFile(testdata(t, "page.png"))
	require.NoError(t, err)
	live := map[string]bool{}
	for i := range 2 {
		id, err := api.UploadFile(t.Context(), simplecontent.NewFile{
			OwnerID: backfilltest.Owners[0], OwnerType: "user", TenantID: backfilltest.Tenants[0],
			FileName: fmt.Sprintf("live-%d.png", i), MimeType: "image/png", DocumentType: "document",
		}, strings.NewReader(string(png)), int64(len(png)))
		require.NoError(t, err)
		e, err := job.NewEvent(job.Spec{ID: fmt.Sprintf("live-%d", i), ContentID: id, TenantID: backfilltest.Tenants[0],
			OwnerID: backfilltest.Owners[0], Hints: map[string]string{"priority": "high"}})
		require.NoError(t, err)
		require.NoError(t, rt.Send(t.Context(), e))
		live[e.ID()] = true
	}

	jobs := map[string]bool{}
	key := bfKey(t)
	for id := range contents {
		jobs[backfill.JobID(id, key(id))] = true
	}
	for id := range live {
		jobs[id] = true
	}
	completed := map[string]bool{}
	var order []string // completions, in order
	deadline := time.After(5 * time.Minute)
	for len(completed) < len(jobs) {
		select {
		case ev, ok := <-lifecycle:
			require.True(t, ok, "lifecycle stream ended")
			id, _ := ev.Extensions()[events.ExtJob].(string)
			if !jobs[id] {
				continue
			}
			switch ev.Type() {
			case events.TypeJobCompleted:
				if !completed[id] {
					order = append(order, id)
				}
				completed[id] = true
			case events.TypeJobFailed:
				require.Failf(t, "a backfilled job failed", "%s: %s\nserve:\n%s", id, ev.Data(), serveOut.String())
			}
		case <-deadline:
			require.Failf(t, "backfilled jobs did not complete", "%d of %d within 5 minutes\nserve:\n%s", len(completed), len(jobs), serveOut.String())
		}
	}

	for i, id := range order {
		if live[id] {
			t.Logf("live job %s finished as %d of %d", id, i+1, len(order))
			assert.Less(t, i, len(order)-1, "live job %s finished last, after the whole backfill", id)
			assert.Less(t, i, len(order)/2, "live job %s finished as %d of %d: after most of the backfill", id, i+1, len(order))
		}
	}

	// The results are in the database now: nothing is left to backfill.
	var again, againErr syncBuffer
	require.Equal(t, 0, run(t.Context(), []string{"backfill", "--json", "--dry-run"}, &again, &againErr), againErr.String())
	var second backfill.Summary
	require.NoError(t, json.Unmarshal([]byte(again.String()), &second))
	assert.Zero(t, second.Selected)
	assert.Equal(t, int64(50+len(live)), second.Skipped[backfill.ReasonHasOCR], "the backfilled and the live contents")
}

// The backfill child process of the kill tests: the test binary re-run
// with these variables set runs `ocrflow backfill` as main does.
const (
	bfChildEnv  = "OCRFLOW_BACKFILL_CHILD"
	bfChildArgs = "OCRFLOW_BACKFILL_CHILD_ARGS"
)

func TestBackfill_child_process(t *testing.T) {
	if os.Getenv(bfChildEnv) != "1" {
		t.Skip("runs only as the child process of TestBackfill_killed_and_resumed")
	}
	var args []string
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(bfChildArgs)), &args))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// TestBackfill_killed_and_resumed runs a backfill from the database in a
// child process, stops it in the middle — SIGKILL, SIGINT, SIGINT twice —
// and resumes it from the checkpoint: every selected job is in the stream
// exactly once.
func TestBackfill_killed_and_resumed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		signals  []os.Signal
		batch    string
		wantCode int // -1: killed by the signal
	}{
		{"sigkill", []os.Signal{syscall.SIGKILL}, "10", -1},
		{"sigint_finishes_the_batch", []os.Signal{os.Interrupt}, "10", 130},
		{"sigint_twice_stops_at_once", []os.Signal{os.Interrupt, os.Interrupt}, "1000", 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			natsURL := bfEnv(t)
			dbURL, pool := bfPostgres(t)
			key := bfKey(t)
			fx := backfilltest.Seed(t, repopg.NewWithPool(pool), 150, key, func(id string) string { return "old|" + id })
			want := map[string]bool{}
			for _, id := range fx.IDs(func(c backfilltest.Seeded) bool { return !c.Deleted }) {
				want[backfill.JobID(id, key(id))] = true
			}
			rt, err := standalone.New(t.Context(), standalone.Config{URL: natsURL}) // the stream
			require.NoError(t, err)
			require.NoError(t, rt.Close(context.Background()))
			cp := filepath.Join(t.TempDir(), "backfill.json")
			args := []string{"backfill", "--database-url", dbURL, "--nats", natsURL, "--checkpoint", cp,
				"--mime", "*", "--status", "uploaded,created,processing,failed,archived", "--missing-ocr=false",
				"--rate", "40", "--batch", tc.batch, "--progress-interval", "0"}

			// Count the jobs as they arrive, to stop the child mid-run.
			nc, err := nats.Connect(natsURL)
			require.NoError(t, err)
			defer nc.Close()
			var seen atomic.Int64
			sub, err := nc.Subscribe(standalone.DefaultJobSubject+".>", func(*nats.Msg) { seen.Add(1) }) // the low lane
			require.NoError(t, err)
			defer func() { assert.NoError(t, sub.Unsubscribe()) }()

			b, err := json.Marshal(args)
			require.NoError(t, err)
			child := exec.Command(os.Args[0], "-test.run=^TestBackfill_child_process$", "-test.count=1")
			child.Env = append(os.Environ(), bfChildEnv+"=1", bfChildArgs+"="+string(b))
			var out syncBuffer
			child.Stdout, child.Stderr = &out, &out
			require.NoError(t, child.Start())
			exited := make(chan error, 1)
			go func() { exited <- child.Wait() }()
			waitFor(t, exited, &out, "35 jobs published", func() bool { return seen.Load() >= 35 })
			for i, sig := range tc.signals {
				require.NoError(t, child.Process.Signal(sig))
				if i+1 < len(tc.signals) {
					waitFor(t, exited, &out, "the child's notice", func() bool { return strings.Contains(out.String(), "interrupt again") })
				}
			}
			select {
			case werr := <-exited:
				t.Logf("child: %v", werr) // the exit status is checked below
			case <-time.After(60 * time.Second):
				_ = child.Process.Kill()
				require.Failf(t, "the child did not stop", "%s", out.String())
			}
			assert.Equal(t, tc.wantCode, child.ProcessState.ExitCode(), "child output:\n%s", out.String())
			before := len(streamJobIDs(t, natsURL))
			assert.Less(t, before, len(want), "stopped before the end")

			var stdout, stderr syncBuffer
			code := run(t.Context(), append(args, "--resume", "--rate", "0", "--json"), &stdout, &stderr)
			require.Equal(t, 0, code, "resume:\n%s\nchild:\n%s", stderr.String(), out.String())
			var sum backfill.Summary
			require.NoError(t, json.Unmarshal([]byte(stdout.String()), &sum))
			assert.True(t, sum.Done)
			assert.Equal(t, int64(len(want)), sum.Submitted, "submitted in all")

			got := map[string]int{}
			for _, id := range streamJobIDs(t, natsURL) {
				got[id]++
			}
			assert.Len(t, got, len(want))
			for id := range want {
				assert.Equal(t, 1, got[id], "job %s in the stream", id)
			}
			t.Logf("%s: %d of %d jobs in the stream when stopped; resumed run republished %d", tc.name, before, len(want), sum.Republished)
		})
	}
}

// waitFor waits until cond holds, failing if the child exits or a minute
// passes first.
func waitFor(t *testing.T, exited chan error, out *syncBuffer, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case err := <-exited:
			exited <- err
			require.Failf(t, "the child exited early", "waiting for %s: %v\n%s", what, err, out.String())
		case <-deadline:
			require.Failf(t, "timed out", "waiting for %s\n%s", what, out.String())
		case <-tick.C:
		}
	}
}

// TestBackfill_publishes_to_either_transport runs a backfill from an id
// list to NATS and to a broker ingress, with progress logged every 20 ms
// (standard error is not a terminal), then runs it again: the second run
// submits nothing.
func TestBackfill_publishes_to_either_transport(t *testing.T) {
	for _, transport := range []string{"nats", "broker"} {
		t.Run(transport, func(t *testing.T) {
			natsURL := bfEnv(t)
			t.Setenv("LOG_LEVEL", "info")
			key := bfKey(t)
			repo := memory.New()
			fx := backfilltest.Seed(t, repo, 40, key, func(id string) string { return "old|" + id })
			srv := backfilltest.StartContent(t, repo)
			t.Setenv("SIMPLE_CONTENT_URL", srv.URL)
			t.Setenv("SIMPLE_CONTENT_API_KEY", backfilltest.APIKey)
			var ids strings.Builder
			want := map[string]bool{}
			for _, c := range fx.Contents {
				ids.WriteString(c.ID + "\n")
				if !c.Deleted && c.Status == simplecontent.StatusUploaded && !c.Current && c.MIME != "text/plain" && c.MIME != "video/mp4" {
					want[backfill.JobID(c.ID, key(c.ID))] = true
				}
			}
			list := filepath.Join(t.TempDir(), "ids.txt")
			require.NoError(t, os.WriteFile(list, []byte(ids.String()), 0o600))

			var received func() []string
			target := []string{"--nats", natsURL}
			if transport == "broker" {
				var mu sync.Mutex
				var got []string
				broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					got = append(got, r.Header.Get("Ce-Id"))
					mu.Unlock()
					w.WriteHeader(http.StatusAccepted)
				}))
				defer broker.Close()
				target = []string{"--broker", broker.URL}
				received = func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
			} else {
				rt, err := standalone.New(t.Context(), standalone.Config{URL: natsURL}) // the stream
				require.NoError(t, err)
				require.NoError(t, rt.Close(context.Background()))
				received = func() []string { return streamJobIDs(t, natsURL) }
			}
			args := append([]string{"backfill", "--ids-from", list, "--rate", "40", "--progress-interval", "20ms"}, target...)
			var stdout, stderr syncBuffer
			require.Equal(t, 0, run(t.Context(), args, &stdout, &stderr), "stderr:\n%s", stderr.String())
			assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), received())
			assert.Contains(t, stdout.String(), fmt.Sprintf("submitted %d", len(want)))
			assert.Contains(t, stderr.String(), "backfill progress", "progress is logged when standard error is not a terminal")
			assert.Contains(t, stderr.String(), "jobs_per_second=")

			var again, againErr syncBuffer
			require.Equal(t, 0, run(t.Context(), append(args, "--json"), &again, &againErr), againErr.String())
			var sum backfill.Summary
			require.NoError(t, json.Unmarshal([]byte(again.String()), &sum))
			assert.Zero(t, sum.Submitted)
			assert.Equal(t, int64(len(want)), sum.Skipped[backfill.ReasonSubmitted])
			assert.Len(t, received(), len(want), "nothing sent the second time")
		})
	}
}
