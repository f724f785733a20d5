//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/chaos"
	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/status"
)

// scenario is one chaos run: an environment, jobs, and the trouble done
// to them while they run.
type scenario struct {
	name  string
	vllm  vllmtest.Config
	env   []string
	jobs  int
	pages int
	hints map[string]string
	// failPages returns the pages of document tag that must end as
	// placeholders.
	failPages func(tag int) []int
	// act makes the trouble once the jobs are submitted and returns what
	// it did (for the results table); restarted lists the workers it
	// restarted (their resources are not compared).
	act    func(t *testing.T, ctx context.Context, env *chaos.Env, jobs []chaos.Job) (did string, restarted []string)
	within time.Duration
}

func TestChaos(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) { run(t, sc) })
	}
}

func run(t *testing.T, sc scenario) {
	ctx, cancel := context.WithTimeout(context.Background(), sc.within+3*time.Minute)
	defer cancel()
	start := time.Now()
	env, err := chaos.Start(ctx, chaos.Config{Bin: bin, Dir: t.TempDir(), VLLM: sc.vllm, Env: sc.env, Seed: 7})
	require.NoError(t, err)
	defer func() {
		if t.Failed() {
			for _, p := range append([]*chaos.Proc{env.NATS}, env.Workers...) {
				t.Logf("%s log (tail):\n%s", p.Name, tailString(p.Log(), 4000))
			}
		}
		assert.NoError(t, env.Close(context.Background()))
	}()

	// A fault-free warm-up batch at full concurrency, so connection pools
	// and workers are at their working size when the resource baseline is
	// taken: growth after the scenario is then a leak, not a pool filling.
	var warm []chaos.Job
	for tag := warmTag; tag < warmTag+8; tag++ {
		warm = append(warm, submit(t, ctx, env, "warm", tag, 3, nil, nil)...)
	}
	_, err = env.Wait(ctx, warm, 2*time.Minute)
	require.NoError(t, err, "warm-up")
	before := map[string]chaos.Resources{}
	for _, p := range env.Workers {
		r, err := p.Resources(ctx)
		require.NoError(t, err)
		before[p.Name] = r
	}

	var jobs []chaos.Job
	for i := 1; i <= sc.jobs; i++ {
		jobs = append(jobs, submit(t, ctx, env, sc.name, i, sc.pages, sc.hints, sc.failPages)...)
	}
	did, restarted := "none", []string(nil)
	if sc.act != nil {
		did, restarted = sc.act(t, ctx, env, jobs)
	}
	states, err := env.Wait(ctx, jobs, sc.within)
	require.NoError(t, err)
	problems := env.Verify(ctx, jobs, states)

	for _, p := range env.Workers {
		left, err := p.TempFiles()
		require.NoError(t, err)
		if len(left) > 0 {
			problems = append(problems, fmt.Sprintf("%s left temp files: %v", p.Name, left))
		}
		if slices.Contains(restarted, p.Name) {
			continue
		}
		after, err := settled(ctx, p, before[p.Name])
		require.NoError(t, err)
		problems = append(problems, chaos.Grew(p.Name, before[p.Name], after)...)
	}
	if sc.vllm.Fault == nil {
		assert.Empty(t, env.VLLM.Violations(), "requests the fake vLLM refused")
	}
	for _, p := range problems {
		t.Error(p)
	}
	faults := []string{did}
	for _, f := range []*chaos.Faults{env.ContentFaults, env.ContentS3Faults, env.ScratchFaults} {
		if s := f.Summary(); s != "" {
			faults = append(faults, s)
		}
	}
	if st := env.VLLM.Stats(); len(st.Faults) > 0 {
		faults = append(faults, "model "+faultSummary(st.Faults))
	}
	outcome := "pass"
	if len(problems) > 0 || t.Failed() {
		outcome = fmt.Sprintf("FAIL (%d problem(s))", len(problems))
	}
	completed, failed := 0, 0
	for _, st := range states {
		if st.State == status.Completed {
			completed++
		} else {
			failed++
		}
	}
	outcome += fmt.Sprintf(": %d completed, %d failed as expected", completed, failed)
	resultsMu.Lock()
	results = append(results, chaos.Result{Scenario: sc.name, Jobs: len(jobs), Pages: len(jobs) * sc.pages,
		Faults: strings.Join(faults, "; "), Outcome: outcome, Time: time.Since(start)})
	resultsMu.Unlock()
}

// settled scrapes p until its goroutines stop falling toward the
// baseline (idle connections and timers wind down for a few seconds after
// the last job), and returns the last reading.
func settled(ctx context.Context, p *chaos.Proc, base chaos.Resources) (chaos.Resources, error) {
	// A scenario may leave more idle keep-alive connections than the
	// warm-up did (duplicated events raise the concurrency, and the
	// adaptive in-flight limit follows it): each is a descriptor and two
	// goroutines until its transport's idle timeout (90 s) closes it. Growth
	// that outlasts that timeout is a leak; growth that does not was a pool.
	deadline := time.Now().Add(idleConnTimeout + 10*time.Second)
	for {
		r, err := p.Resources(ctx)
		if err != nil || len(chaos.Grew(p.Name, base, r)) == 0 || time.Now().After(deadline) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// idleConnTimeout is the longest idle-connection timeout of a worker's
// HTTP clients (egress and the vllm engine: net/http's default transport
// setting).
const idleConnTimeout = 90 * time.Second

// submit uploads document tag of pages pages and publishes its job.
func submit(t *testing.T, ctx context.Context, env *chaos.Env, prefix string, tag, pages int, hints map[string]string, failPages func(int) []int) []chaos.Job {
	t.Helper()
	doc, err := vllmtest.Document(tag, pages, 566, 800)
	require.NoError(t, err)
	id, err := env.Upload(ctx, fmt.Sprintf("%s-%d.pdf", prefix, tag), doc)
	require.NoError(t, err)
	jobID := fmt.Sprintf("%s-%d", slug(prefix), tag)
	e, err := job.NewEvent(job.Spec{ID: jobID, ContentID: id, TenantID: chaos.Tenant, OwnerID: chaos.Owner, Hints: hints})
	require.NoError(t, err)
	require.NoError(t, env.Publish(ctx, e))
	j := chaos.Job{ID: jobID, ContentID: id, Tag: tag, Pages: pages}
	if failPages != nil {
		j.FailPages = failPages(tag)
	}
	return []chaos.Job{j}
}

// progressed waits until the jobs' durable status shows at least done
// finished pages in all, or at least one job converting when done is 0.
func progressed(t *testing.T, ctx context.Context, env *chaos.Env, jobs []chaos.Job, done int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sum, converting := 0, false
		for _, j := range jobs {
			st, err := status.Read(ctx, env.Scratch, j.ID, time.Now())
			if err == nil {
				sum += st.Pages.Done
				converting = converting || st.State == status.Converting
			}
		}
		if (done == 0 && converting) || (done > 0 && sum >= done) {
			return
		}
		require.False(t, time.Now().After(deadline), "jobs did not progress to %d pages", done)
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// killAndRestart SIGKILLs p, then starts it again.
func killAndRestart(t *testing.T, ctx context.Context, env *chaos.Env, p *chaos.Proc) {
	t.Helper()
	require.NoError(t, p.Kill())
	require.NoError(t, env.StartWorker(ctx, p))
}

func scenarios() []scenario {
	fast := vllmtest.Config{Latency: 100 * time.Millisecond, Capacity: 8}
	return []scenario{
		{
			name: "SIGKILL a worker while it converts", vllm: fast, jobs: 10, pages: 6, within: 3 * time.Minute,
			act: func(t *testing.T, ctx context.Context, env *chaos.Env, jobs []chaos.Job) (string, []string) {
				progressed(t, ctx, env, jobs, 0)
				killAndRestart(t, ctx, env, env.Workers[0])
				return "SIGKILL serve-1 while a job converted; restarted", []string{"serve-1"}
			},
		},
		{
			name: "SIGKILL a worker while it recognizes", vllm: vllmtest.Config{Latency: 400 * time.Millisecond, Capacity: 8},
			jobs: 10, pages: 5, within: 3 * time.Minute,
			act: func(t *testing.T, ctx context.Context, env *chaos.Env, jobs []chaos.Job) (string, []string) {
				progressed(t, ctx, env, jobs, 8)
				killAndRestart(t, ctx, env, env.Workers[1])
				return "SIGKILL serve-2 with pages at the engine; restarted", []string{"serve-2"}
			},
		},
		{
			name: "SIGKILL a worker while it stores a result", vllm: fast, jobs: 10, pages: 4, within: 3 * time.Minute,
			act: killWhileStoring,
		},
		{
			name: "restart NATS mid-run", vllm: vllmtest.Config{Latency: 200 * time.Millisecond, Capacity: 8},
			jobs: 10, pages: 5, within: 4 * time.Minute,
			act: restartNATS,
		},
		{
			name: "every internal event delivered twice, some ten times", vllm: fast, jobs: 10, pages: 5, within: 3 * time.Minute,
			act: duplicateEvents,
		},
		{
			name: "model server: 20% 503, 5% timeouts, dropped connections, a page that always loops",
			vllm: vllmtest.Config{Latency: 100 * time.Millisecond, Capacity: 8, Fault: modelFaults()},
			env:  []string{"OCR_PAGE_TIMEOUT=3s", "MAX_PAGE_ERROR_RATE=0.5"},
			jobs: 10, pages: 5, within: 6 * time.Minute,
			failPages: func(int) []int { return []int{2} },
		},
		{
			name: "content service and scratch store: 5xx, timeouts, slow responses", vllm: fast,
			env:  []string{"SIMPLE_CONTENT_TIMEOUT=1s"},
			jobs: 10, pages: 4, within: 5 * time.Minute,
			act: func(t *testing.T, ctx context.Context, env *chaos.Env, jobs []chaos.Job) (string, []string) {
				env.ContentFaults.Set(
					chaos.Rule{Name: "content api 503", Rate: 0.10, Status: http.StatusServiceUnavailable},
					chaos.Rule{Name: "content api timeout", Rate: 0.04, Hang: 5 * time.Second},
				)
				env.ContentS3Faults.Set(
					chaos.Rule{Name: "content s3 500 on fetch", Rate: 0.15, Status: http.StatusInternalServerError,
						Match: func(r *http.Request) bool { return r.Method == http.MethodGet }},
					chaos.Rule{Name: "content s3 500 on store", Rate: 0.15, Status: http.StatusInternalServerError,
						Match: func(r *http.Request) bool { return r.Method == http.MethodPut }},
				)
				env.ScratchFaults.Set(
					chaos.Rule{Name: "scratch s3 500", Rate: 0.03, Status: http.StatusInternalServerError},
					chaos.Rule{Name: "scratch s3 slow", Rate: 0.10, Delay: 300 * time.Millisecond},
				)
				t.Cleanup(func() { env.ContentFaults.Clear(); env.ContentS3Faults.Clear(); env.ScratchFaults.Clear() })
				return "content/scratch faults from submission on", nil
			},
		},
		{
			name: "timeout_seconds expires mid-run",
			vllm: vllmtest.Config{Latency: 100 * time.Millisecond, Capacity: 8, Fault: func(c vllmtest.Call) vllmtest.Fault {
				if c.Tag < warmTag && c.Page == 1 && c.Attempt <= 2 {
					return vllmtest.FaultTimeout // held past the job's one-second page deadline
				}
				return vllmtest.FaultNone
			}},
			hints: map[string]string{"timeout_seconds": "1"}, jobs: 10, pages: 4, within: 4 * time.Minute,
		},
		{
			name: "SIGTERM a worker with work in flight", vllm: vllmtest.Config{Latency: 500 * time.Millisecond, Capacity: 8},
			jobs: 10, pages: 5, within: 3 * time.Minute,
			act: func(t *testing.T, ctx context.Context, env *chaos.Env, jobs []chaos.Job) (string, []string) {
				progressed(t, ctx, env, jobs, 6)
				p := env.Workers[0]
				require.NoError(t, p.Stop(20*time.Second), "a SIGTERM drains within SHUTDOWN_TIMEOUT")
				assert.NoError(t, p.Exit(), "a worker stopped by SIGTERM exits cleanly")
				require.NoError(t, env.StartWorker(ctx, p))
				return "SIGTERM serve-1 mid-run (drained, exit 0); restarted", []string{"serve-1"}
			},
		},
	}
}

// modelFaults: page 2 of every document always loops (its page fails with
// a reason); other calls meet 20 % 503s, 5 % timeouts and 5 % dropped
// connections, reproducibly.
func modelFaults() func(vllmtest.Call) vllmtest.Fault {
	mix := vllmtest.Mix{vllmtest.FaultUnavailable: 0.20, vllmtest.FaultTimeout: 0.05, vllmtest.FaultDrop: 0.05}.Faults(11)
	return func(c vllmtest.Call) vllmtest.Fault {
		switch {
		case c.Tag >= warmTag:
			return vllmtest.FaultNone
		case c.Page == 2:
			return vllmtest.FaultLoop
		}
		return mix(c)
	}
}

// killWhileStoring holds the first result upload at simple-content, finds
// the worker that sent it (its request ends when it dies), kills it
// there, and restarts it.
func killWhileStoring(t *testing.T, ctx context.Context, env *chaos.Env, _ []chaos.Job) (string, []string) {
	caught, release := env.ContentFaults.Hold(func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/derived")
	})
	var req *http.Request
	select {
	case req = <-caught:
	case <-ctx.Done():
		t.Fatal("no result was stored")
	}
	var victim string
	for _, p := range env.Workers {
		require.NoError(t, p.Kill())
		select {
		case <-req.Context().Done():
			victim = p.Name
		case <-time.After(3 * time.Second):
		}
		require.NoError(t, env.StartWorker(ctx, p))
		if victim != "" {
			break
		}
	}
	close(release)
	require.NotEmpty(t, victim, "the held request outlived every worker")
	return "SIGKILL " + victim + " while it stored a result (the other restarted too if it was not the one); restarted", []string{"serve-1", "serve-2"}
}

// restartNATS follows one job with `ocrflow submit --wait` across a NATS
// outage in the middle of the run.
func restartNATS(t *testing.T, ctx context.Context, env *chaos.Env, jobs []chaos.Job) (string, []string) {
	doc, err := vllmtest.Document(50, 4, 566, 800)
	require.NoError(t, err)
	id, err := env.Upload(ctx, "followed.pdf", doc)
	require.NoError(t, err)
	wait := exec.CommandContext(ctx, bin, "submit", "--content-id", id, "--tenant", chaos.Tenant, "--owner", chaos.Owner,
		"--job-id", "followed", "--nats", env.NATSURL, "--wait", "--timeout", "5m")
	wait.Env = append(os.Environ(), "BLOB_URL=file://"+filepath.Join(t.TempDir(), "blobs"))
	var out strings.Builder
	wait.Stdout, wait.Stderr = &out, &out
	require.NoError(t, wait.Start())
	waited := make(chan error, 1)
	go func() { waited <- wait.Wait() }()

	progressed(t, ctx, env, jobs, 12)
	require.NoError(t, env.NATS.Stop(15*time.Second))
	select { // the outage
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
	}
	require.NoError(t, env.StartNATS(ctx))
	select {
	case err := <-waited:
		assert.NoError(t, err, "submit --wait followed its job through the outage:\n%s", out.String())
		assert.Contains(t, out.String(), "ocr.job.completed", "submit --wait printed the terminal event")
	case <-time.After(4 * time.Minute):
		t.Errorf("submit --wait did not end:\n%s", out.String())
	}
	return "NATS stopped for 3 s after 12 pages, restarted on its store; a submit --wait followed its job through it", nil
}

// duplicateEvents republishes every internal event once more, and every
// fifth one nine more times, with fresh message ids (so JetStream does not
// drop them as duplicates): at-least-once delivery at its worst.
func duplicateEvents(t *testing.T, ctx context.Context, env *chaos.Env, _ []chaos.Job) (string, []string) {
	js, err := env.Conn().JetStream()
	require.NoError(t, err)
	var n, copies atomic.Int64
	sub, err := env.Conn().Subscribe("ocr.>", func(m *nats.Msg) {
		if m.Header.Get("Chaos-Copy") != "" || strings.HasPrefix(m.Subject, "ocr.job.") || m.Subject == "ocr.dlq" {
			return
		}
		k := 1
		if n.Add(1)%5 == 0 {
			k = 10
		}
		for i := 0; i < k; i++ {
			c := nats.NewMsg(m.Subject)
			c.Data = m.Data
			for key, vs := range m.Header {
				c.Header[key] = vs
			}
			c.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s/copy-%d", m.Header.Get(nats.MsgIdHdr), i))
			c.Header.Set("Chaos-Copy", "1")
			if _, err := js.PublishMsg(c); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				t.Logf("copy: %v", err)
			}
			copies.Add(1)
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return fmt.Sprintf("internal events republished (%s)", "each ×2, every 5th ×11"), nil
}

func faultSummary(m map[vllmtest.Fault]int) string {
	var parts []string
	for f, n := range m {
		if f != vllmtest.FaultNone {
			parts = append(parts, fmt.Sprintf("%s ×%d", f, n))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// slug turns a scenario name into a job id prefix.
func slug(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
