package app_test

// Contract tests of the pipeline on simple-content: the real v5 handlers
// of github.com/tendant/simple-content run in-process (package embedded:
// memory repository, blobs in an in-process gofakes3 S3 server), the
// pipeline runs on an embedded NATS server, and faults are injected at the
// HTTP boundary of the real servers.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tendant/simple-process/pkg/contracts"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/egress"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/simplecontent/embedded"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

const (
	tenantA = "aaaaaaaa-0000-4000-8000-000000000001"
	tenantB = "bbbbbbbb-0000-4000-8000-000000000002"
	ownerA  = "aaaaaaaa-0000-4000-8000-0000000000a1"
	ownerB  = "bbbbbbbb-0000-4000-8000-0000000000b2"
)

// traffic records the requests reaching the embedded servers and lets a
// test inject faults: a fault returns true when it answered the request.
type traffic struct {
	mu     sync.Mutex
	seen   []string // "API GET /api/v5/..." or "S3 PUT /bucket/key"
	faults map[string]*atomic.Pointer[fault]
}

type fault func(next http.Handler, w http.ResponseWriter, r *http.Request) bool

func newTraffic() *traffic {
	return &traffic{faults: map[string]*atomic.Pointer[fault]{"API": {}, "S3": {}}}
}

func (tr *traffic) middleware(side string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tr.mu.Lock()
			tr.seen = append(tr.seen, side+" "+r.Method+" "+r.URL.Path)
			tr.mu.Unlock()
			if f := tr.faults[side].Load(); f != nil && (*f)(next, w, r) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// setFault installs f for the requests of one side ("API" or "S3").
func (tr *traffic) setFault(side string, f fault) { tr.faults[side].Store(&f) }

// reset forgets recorded requests and removes the fault.
func (tr *traffic) reset() {
	tr.mu.Lock()
	tr.seen = nil
	tr.mu.Unlock()
	for _, f := range tr.faults {
		f.Store(nil)
	}
}

// count returns how many recorded requests start with prefix.
func (tr *traffic) count(prefix string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, s := range tr.seen {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

type scHarness struct {
	t       *testing.T
	srv     *embedded.Server
	api     *simplecontent.Client // the platform's client, for setup and checks
	traffic *traffic
	rt      *standalone.Runtime
	convert stage.Handler
	journal *journal
	blobs   *blob.Dir // the scratch store
}

type scOpts struct {
	env     map[string]string // configuration overrides
	tempDir string            // TMPDIR for convert's working files
	engine  engine.Engine     // the engine (default the fake)
}

func newSCHarness(t *testing.T, o scOpts) *scHarness {
	t.Helper()
	ctx := t.Context()
	tr := newTraffic()
	srv, err := embedded.Start(embedded.Config{APIMiddleware: tr.middleware("API"), S3Middleware: tr.middleware("S3")})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, srv.Close(ctx), "close simple-content")
	})
	// s3:// sources are presigned with credentials from the default chain.
	t.Setenv("AWS_ACCESS_KEY_ID", "embedded")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "embedded")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	if o.tempDir != "" {
		t.Setenv("TMPDIR", o.tempDir)
	}
	env := map[string]string{
		"OCR_ENGINE": "fake", "RECOGNIZE_WORKERS": "3", "CONVERT_WORKERS": "1", "MAX_PAGE_ERROR_RATE": "1",
		"CONTENT_STORE": "simple-content", "SIMPLE_CONTENT_URL": srv.URL(), "SIMPLE_CONTENT_API_KEY": srv.APIKey(),
		"S3_ENDPOINT": srv.S3URL(), "S3_PATH_STYLE": "true",
	}
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	store, err := app.OpenContent(ctx, cfg, nil)
	require.NoError(t, err)
	sc, ok := store.(*simplecontent.Store)
	require.True(t, ok, "CONTENT_STORE=simple-content built a %T", store)
	t.Cleanup(sc.Client().CloseIdleConnections)

	policy, _ := egress.NewPolicy(egress.HostOf(srv.URL()), egress.HostOf(srv.S3URL()))
	api, err := simplecontent.New(simplecontent.Config{BaseURL: srv.URL(), APIKey: srv.APIKey(), Transfers: policy.Client(), Attempts: 1})
	require.NoError(t, err)
	t.Cleanup(api.CloseIdleConnections)

	blobs, err := blob.NewDir(filepath.Join(t.TempDir(), "blobs"))
	require.NoError(t, err)
	eng := o.engine
	if eng == nil {
		eng = &engine.Fake{}
	}
	sv := serve(t, cfg, app.Options{Scratch: blobs, Content: store, Engine: eng}, "")
	h := &scHarness{t: t, srv: srv, api: api, traffic: tr, rt: sv.rt, journal: sv.journal, blobs: blobs}
	for _, s := range sv.app.Stages() {
		if s.Name == stage.Convert {
			h.convert = s.Handler
		}
	}
	return h
}

// upload stores a file of testdata as a platform does: create → presigned
// PUT → complete. declareSize sets file_size; complete=false leaves the
// content "created".
func (h *scHarness) upload(file, tenant, owner string, declareSize, complete bool) string {
	h.t.Helper()
	body, err := os.ReadFile(filepath.Join(testdata, file))
	require.NoError(h.t, err)
	return h.uploadBytes(file, body, tenant, owner, declareSize, complete)
}

func (h *scHarness) uploadBytes(name string, body []byte, tenant, owner string, declareSize, complete bool) string {
	h.t.Helper()
	ctx := h.t.Context()
	nf := simplecontent.NewFile{OwnerID: owner, OwnerType: "user", TenantID: tenant, FileName: name, DocumentType: "document"}
	if declareSize {
		nf.FileSize = int64(len(body))
	}
	f, err := h.api.CreateFile(ctx, nf)
	require.NoError(h.t, err)
	require.NoError(h.t, h.api.Upload(ctx, f.UploadURL, bytes.NewReader(body), int64(len(body)), "application/octet-stream"))
	if complete {
		require.NoError(h.t, h.api.CompleteFile(ctx, f.ContentID))
	}
	return f.ContentID
}

// jobSpec is a simple-process job with the fields job.Spec lacks.
type jobSpec struct {
	id, contentID, tenant, owner string
	location, presignedGet       string
	sha256                       string
	size                         int64
	hints                        map[string]string
}

func (h *scHarness) event(s jobSpec) event.Event {
	h.t.Helper()
	e, err := job.NewEvent(job.Spec{ID: s.id, ContentID: s.contentID, TenantID: s.tenant, OwnerID: s.owner, Location: s.location, Hints: s.hints})
	require.NoError(h.t, err)
	var raw contracts.Job
	require.NoError(h.t, json.Unmarshal(e.Data(), &raw))
	raw.PresignedGet = s.presignedGet
	raw.File.Blob.Size = s.size
	if s.sha256 != "" {
		raw.File.Attributes["sha256"] = s.sha256
	}
	require.NoError(h.t, e.SetData(event.ApplicationJSON, raw))
	return e
}

func (h *scHarness) submit(s jobSpec) event.Event {
	h.t.Helper()
	e := h.event(s)
	require.NoError(h.t, h.rt.Send(h.t.Context(), e))
	return e
}

// wait returns the job's lifecycle events up to its terminal one.
func (h *scHarness) wait(id string) []event.Event {
	h.t.Helper()
	return h.journal.until(h.t, id, 60*time.Second)
}

func (h *scHarness) failed(id string) events.JobFailed {
	h.t.Helper()
	evs := h.wait(id)
	last := evs[len(evs)-1]
	require.Equal(h.t, events.TypeJobFailed, last.Type(), "job %s ended with %s (%s), want failed", id, last.Type(), last.Data())
	var f events.JobFailed
	require.NoError(h.t, events.Decode(last, &f))
	return f
}

// derived returns the parent's derived contents with their metadata.
func (h *scHarness) derived(parent string) ([]simplecontent.Content, []simplecontent.Metadata) {
	h.t.Helper()
	list, err := h.api.ListDerived(h.t.Context(), parent)
	require.NoError(h.t, err)
	metas := make([]simplecontent.Metadata, len(list))
	for i, c := range list {
		metas[i], err = h.api.GetMetadata(h.t.Context(), c.ID)
		require.NoError(h.t, err)
	}
	return list, metas
}

// download fetches a content's bytes the way a platform user does.
func (h *scHarness) download(id string) string {
	h.t.Helper()
	f, err := h.api.GetFile(h.t.Context(), id)
	require.NoError(h.t, err)
	require.NotEmpty(h.t, f.DownloadURL, "content %s (status %s) has no download url", id, f.Status)
	resp, err := h.api.Download(h.t.Context(), f.DownloadURL, 10*time.Second)
	require.NoError(h.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return string(b)
}

// offHints sends every page through the fake engine, so its text proves
// page order.
var offHints = map[string]string{"text_layer": "off"}

func TestSimpleContent_pdf_job_ends_in_a_downloadable_derived_markdown_with_metadata(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	parent := h.upload("report.pdf", tenantA, ownerA, true, true)
	h.submit(jobSpec{id: "sc-flow", contentID: parent, tenant: tenantA, owner: ownerA, hints: offHints})
	evs := h.wait("sc-flow")
	c := completed(t, evs[len(evs)-1])
	assert.False(t, c.Reused, "completed = %+v", c)
	assert.Equal(t, 6, c.PageCount, "completed = %+v", c)
	assert.Equal(t, parent, c.ContentID, "completed = %+v", c)
	list, metas := h.derived(parent)
	require.Len(t, list, 1, "derived of %s = %+v, want exactly the completed one %s", parent, list, c.DerivedContentID)
	assert.Equal(t, c.DerivedContentID, list[0].ID, "derived of %s = %+v, want exactly the completed one", parent, list)
	d, m := list[0], metas[0]
	assert.Equal(t, simplecontent.StatusUploaded, d.Status, "derived content = %+v", d)
	assert.Equal(t, parent, d.ParentID, "derived content = %+v: want under the parent", d)
	assert.Equal(t, tenantA, d.TenantID, "derived content = %+v: want the parent's tenant", d)
	assert.Equal(t, ownerA, d.OwnerID, "derived content = %+v: want the parent's owner", d)
	md := h.download(d.ID)
	assertInOrderOnce(t, md, expectedPages(t, "report.pdf"))

	assert.Equal(t, "text/markdown", m.ContentType, "metadata = %+v", m)
	assert.Equal(t, "report.pdf.md", m.FileName, "metadata = %+v", m)
	assert.Equal(t, int64(len(md)), m.FileSize, "metadata = %+v", m)
	for k, want := range map[string]any{
		"engine": "fake", "model": "fake", "mode": "default", "pipeline_version": content.PipelineVersion,
		"source_format": "pdf", "page_count": 6.0, "generator": "ocrflow", "variant": "ocr_markdown",
		"job_id": "sc-flow", "state": "completed", "idempotency_key": content.IdempotencyKey(parent, content.PipelineVersion, "fake", "default"),
	} {
		assert.Equal(t, want, m.Custom[k], "metadata %s", k)
	}
	r, _ := m.Custom["pages_by_route"].(map[string]any)
	assert.Equal(t, 6.0, r["gpu"], "pages_by_route = %v, want gpu 6", m.Custom["pages_by_route"])
	for _, k := range []string{"processing_time_ms", "failed_pages", "sha256", "completed_at"} {
		assert.Contains(t, m.Custom, k, "metadata lacks %s", k)
	}
}

func TestSimpleContent_rerun_never_creates_a_second_derived_content_unless_forced(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	parent := h.upload("page.png", tenantA, ownerA, true, true)
	first := h.submit(jobSpec{id: "sc-first", contentID: parent, tenant: tenantA, hints: offHints})
	evs := h.wait("sc-first")
	orig := completed(t, evs[len(evs)-1]).DerivedContentID

	for _, tc := range []struct {
		name       string
		run        func(t *testing.T) (events.JobCompleted, bool) // false: the job ended no second time
		wantReused bool
		wantCount  int
	}{
		{"same_job_delivered_again", func(t *testing.T) (events.JobCompleted, bool) {
			// A broker redelivery: the same event reaches convert again.
			reply, err := h.convert(t.Context(), first)
			require.NoError(t, err, "redelivery; want nothing to do")
			require.Nil(t, reply, "redelivery replied; want nothing to do")
			return events.JobCompleted{}, false
		}, false, 1},
		{"new_job_same_content", func(t *testing.T) (events.JobCompleted, bool) {
			h.submit(jobSpec{id: "sc-second", contentID: parent, tenant: tenantA})
			evs := h.wait("sc-second")
			require.Len(t, evs, 1, "lifecycle %v: a reused job must complete at once", types(evs))
			return completed(t, evs[0]), true
		}, true, 1},
		{"new_job_with_force", func(t *testing.T) (events.JobCompleted, bool) {
			h.submit(jobSpec{id: "sc-forced", contentID: parent, tenant: tenantA, hints: map[string]string{"force": "true", "text_layer": "off"}})
			evs := h.wait("sc-forced")
			return completed(t, evs[len(evs)-1]), true
		}, false, 2},
		{"new_job_after_force_reuses_the_forced_result", func(t *testing.T) (events.JobCompleted, bool) {
			// The forced result superseded the original: one current
			// result per content and key, and it is the newest.
			list, metas := h.derived(parent)
			state := map[string]any{}
			for i, c := range list {
				state[c.ID] = metas[i].Custom[simplecontent.MetaState]
			}
			assert.Equal(t, simplecontent.StateSuperseded, state[orig], "the original result is superseded")
			h.submit(jobSpec{id: "sc-after-force", contentID: parent, tenant: tenantA})
			evs := h.wait("sc-after-force")
			c := completed(t, evs[len(evs)-1])
			assert.True(t, c.Reused, "the next job reuses the current result")
			assert.NotEqual(t, orig, c.DerivedContentID, "the superseded result is not reused")
			assert.Equal(t, simplecontent.StateCompleted, state[c.DerivedContentID], "the forced result is current")
			return events.JobCompleted{}, false
		}, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ended := tc.run(t)
			if ended {
				assert.Equal(t, tc.wantReused, c.Reused, "reused")
				if tc.wantReused {
					assert.Equal(t, orig, c.DerivedContentID, "reused completion = %+v, want the original derived content", c)
					assert.Equal(t, 1, c.PageCount, "reused completion = %+v, want the original's page count", c)
				} else {
					assert.NotEqual(t, orig, c.DerivedContentID, "forced job reported the old derived content")
				}
			}
			list, _ := h.derived(parent)
			assert.Len(t, list, tc.wantCount, "derived contents")
		})
	}
}

func TestSimpleContent_jobs_of_another_tenant_fail_permanently_and_read_nothing(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	parent := h.upload("report.pdf", tenantA, ownerA, true, true)
	for _, tc := range []struct {
		name, tenant, owner string
		hints               map[string]string
	}{
		{"other_tenant", tenantB, "", nil},
		{"other_owner_same_tenant", tenantA, ownerB, nil},
		{"other_tenant_forced", tenantB, "", map[string]string{"force": "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.traffic.reset()
			id := "sc-x-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(jobSpec{id: id, contentID: parent, tenant: tc.tenant, owner: tc.owner, hints: tc.hints})
			f := h.failed(id)
			assert.Equal(t, string(failure.TypePermanent), f.ErrorType, "failed = %+v", f)
			assert.Contains(t, f.Message, "does not own content", "failed = %+v", f)
			assert.NotContains(t, f.Message, ownerA, "failure message names the real owner")
			if tc.tenant != tenantA {
				assert.NotContains(t, f.Message, tenantA, "failure message names the real owner's tenant")
			}
			assert.Zero(t, h.traffic.count("S3 GET"), "reads from S3: the source was downloaded")
			assert.Zero(t, h.traffic.count("API GET /api/v5/files/"), "download-url lookups for another tenant's content")
			list, _ := h.derived(parent)
			assert.Empty(t, list, "the victim's content got derived contents")
		})
	}
}

func TestSimpleContent_unusable_sources_fail_as_validation(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	pdf, err := os.ReadFile(filepath.Join(testdata, "report.pdf"))
	require.NoError(t, err)
	notUploaded := h.upload("report.pdf", tenantA, ownerA, true, false)
	ok := h.upload("report.pdf", tenantA, ownerA, true, true)
	for _, tc := range []struct {
		name    string
		spec    jobSpec
		wantMsg string
	}{
		{"parent_not_uploaded", jobSpec{contentID: notUploaded, tenant: tenantA}, `is "created", not "uploaded"`},
		{"content_does_not_exist", jobSpec{contentID: "cccccccc-0000-4000-8000-000000000003"}, "does not exist in simple-content"},
		{"content_id_not_a_uuid", jobSpec{contentID: "scan-42"}, "does not exist in simple-content"},
		{"checksum_mismatch", jobSpec{contentID: ok, sha256: strings.Repeat("0", 64)}, "does not match the job's"},
		{"size_mismatch", jobSpec{contentID: ok, size: int64(len(pdf)) - 1}, "but the job says"},
		{"not_a_document", jobSpec{contentID: h.uploadBytes("notes.txt", []byte("plain text, not a document\n"), tenantA, ownerA, true, true)}, "unsupported document type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.id = "sc-v-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(tc.spec)
			f := h.failed(tc.spec.id)
			assert.Equal(t, string(failure.TypeValidation), f.ErrorType, "failed = %+v", f)
			assert.Zero(t, f.RetryCount, "failed = %+v, want no retry", f)
			assert.Contains(t, f.Message, tc.wantMsg, "failed = %+v", f)
		})
	}
}

func TestSimpleContent_failed_job_leaves_a_failed_derived_content_as_trace(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	parent := h.uploadBytes("notes.txt", []byte("plain text, not a document\n"), tenantA, ownerA, true, true)
	h.submit(jobSpec{id: "sc-trace", contentID: parent, tenant: tenantA})
	f := h.failed("sc-trace")
	list, metas := h.derived(parent)
	require.Len(t, list, 1, "derived = %+v, want one failure trace", list)
	m := metas[0].Custom
	assert.Equal(t, simplecontent.StatusFailed, list[0].Status, "trace = %+v", list[0])
	assert.Equal(t, "failed", m["state"], "trace metadata %v", m)
	assert.Equal(t, "sc-trace", m["job_id"], "trace metadata %v", m)
	assert.Equal(t, f.ErrorType, m["error_type"], "trace metadata %v, want the job's error %+v", m, f)
	assert.Equal(t, f.Message, m["error_message"], "trace metadata %v, want the job's error %+v", m, f)
	// A redelivery of the failed job leaves one trace, not two.
	reply, err := h.convert(t.Context(), h.event(jobSpec{id: "sc-trace", contentID: parent, tenant: tenantA}))
	require.NoError(t, err)
	if reply != nil {
		assert.Equal(t, events.TypeJobFailed, reply.Type(), "redelivery replied")
	}
	list, _ = h.derived(parent)
	assert.Len(t, list, 1, "derived contents after redelivery")
	// A later job for the same content does not reuse a failure.
	h.submit(jobSpec{id: "sc-trace-2", contentID: parent, tenant: tenantA})
	f2 := h.failed("sc-trace-2")
	assert.Equal(t, string(failure.TypeValidation), f2.ErrorType, "second job = %+v", f2)
}

// injectN answers the first n requests that match with status and a text
// body; after, when set, runs the real handler first (the server acted,
// then the answer was lost).
func injectN(n int32, status int, match func(r *http.Request) bool, after bool, fired *atomic.Int32) func(next http.Handler, w http.ResponseWriter, r *http.Request) bool {
	return func(next http.Handler, w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || fired.Load() >= n {
			return false
		}
		fired.Add(1)
		if after {
			next.ServeHTTP(httptest.NewRecorder(), r)
		}
		http.Error(w, "injected fault", status)
		return true
	}
}

// hangN holds the first n matching requests until the client gives up.
func hangN(n int32, match func(r *http.Request) bool, fired *atomic.Int32) func(next http.Handler, w http.ResponseWriter, r *http.Request) bool {
	return func(next http.Handler, w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || fired.Load() >= n {
			return false
		}
		fired.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		return true
	}
}

func TestSimpleContent_failures_while_storing_are_retried_into_exactly_one_derived_content(t *testing.T) {
	const attempts = 3 // SIMPLE_CONTENT_ATTEMPTS: the first Store call fails as a whole
	isPut := func(r *http.Request) bool { return r.Method == http.MethodPut }
	isComplete := func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/complete")
	}
	isCreateDerived := func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/derived")
	}
	isMetadataPut := func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/metadata")
	}
	for _, tc := range []struct {
		name  string
		side  string
		fault func(fired *atomic.Int32) func(http.Handler, http.ResponseWriter, *http.Request) bool
		want  int32 // times the fault fires
		// abandoned is how many half-written derived contents the retry
		// deletes (their upload never arrived) rather than finishes.
		abandoned int
	}{
		{"upload_put_answers_500", "S3", func(f *atomic.Int32) func(http.Handler, http.ResponseWriter, *http.Request) bool {
			return injectN(attempts, 500, isPut, false, f)
		}, attempts, 1},
		{"upload_put_times_out", "S3", func(f *atomic.Int32) func(http.Handler, http.ResponseWriter, *http.Request) bool {
			return hangN(attempts, isPut, f)
		}, attempts, 1},
		{"upload_stored_but_answer_lost", "S3", func(f *atomic.Int32) func(http.Handler, http.ResponseWriter, *http.Request) bool {
			return injectN(attempts, 500, isPut, true, f)
		}, attempts, 0},
		{"complete_answers_500", "API", func(f *atomic.Int32) func(http.Handler, http.ResponseWriter, *http.Request) bool {
			return injectN(attempts, 500, isComplete, false, f)
		}, attempts, 0},
		{"create_derived_acted_but_answered_500", "API", func(f *atomic.Int32) func(http.Handler, http.ResponseWriter, *http.Request) bool {
			return injectN(1, 500, isCreateDerived, true, f)
		}, 1, 0},
		{"metadata_put_answers_503", "API", func(f *atomic.Int32) func(http.Handler, http.ResponseWriter, *http.Request) bool {
			return injectN(attempts, 503, isMetadataPut, false, f)
		}, attempts, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSCHarness(t, scOpts{env: map[string]string{"SIMPLE_CONTENT_TIMEOUT": "500ms", "SIMPLE_CONTENT_ATTEMPTS": fmt.Sprint(attempts)}})
			parent := h.upload("page.png", tenantA, ownerA, true, true)
			var fired atomic.Int32
			h.traffic.setFault(tc.side, tc.fault(&fired))
			id := "sc-t-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(jobSpec{id: id, contentID: parent, tenant: tenantA, hints: offHints})
			evs := h.wait(id)
			c := completed(t, evs[len(evs)-1])
			assert.Equal(t, tc.want, fired.Load(), "times the fault fired")
			assert.Equal(t, tc.abandoned, h.traffic.count("API DELETE"), "derived contents deleted")
			list, metas := h.derived(parent)
			require.Len(t, list, 1, "derived = %+v, want exactly the completed %s", list, c.DerivedContentID)
			assert.Equal(t, c.DerivedContentID, list[0].ID, "derived = %+v, want exactly the completed one", list)
			assert.Equal(t, simplecontent.StatusUploaded, list[0].Status, "derived %+v", list[0])
			assert.Equal(t, "completed", metas[0].Custom["state"], "derived %+v state", list[0])
			assertInOrderOnce(t, h.download(c.DerivedContentID), expectedPages(t, "page.png"))
		})
	}
}

func TestSimpleContent_oversized_source_fails_naming_the_limit_and_leaves_no_temp_files(t *testing.T) {
	tmp := t.TempDir()
	h := newSCHarness(t, scOpts{env: map[string]string{"MAX_SOURCE_BYTES": "1000"}, tempDir: tmp})
	stripLength := func(next http.Handler, w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet {
			return false
		}
		next.ServeHTTP(noLength{w}, r) // chunked: the size shows only while streaming
		return true
	}
	for _, tc := range []struct {
		name        string
		declareSize bool
		chunked     bool
		wantS3Gets  int
		wantMsg     string // which check caught it
	}{
		{"size_declared_in_simple_content", true, false, 0, "source is 13584 bytes, more than MAX_SOURCE_BYTES=1000"},
		{"size_announced_by_content_length", false, false, 1, "source is 13584 bytes, more than MAX_SOURCE_BYTES=1000"},
		{"size_seen_only_while_streaming", false, true, 1, "source is larger than MAX_SOURCE_BYTES=1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := h.upload("report.pdf", tenantA, ownerA, tc.declareSize, true)
			h.traffic.reset()
			if tc.chunked {
				h.traffic.setFault("S3", stripLength)
			}
			id := "sc-big-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(jobSpec{id: id, contentID: parent, tenant: tenantA})
			f := h.failed(id)
			assert.Equal(t, string(failure.TypeValidation), f.ErrorType, "failed = %+v", f)
			assert.Contains(t, f.Message, tc.wantMsg, "failed = %+v", f)
			assert.Equal(t, tc.wantS3Gets, h.traffic.count("S3 GET"), "source downloads")
			left, err := os.ReadDir(tmp)
			require.NoError(t, err)
			own := fmt.Sprintf("ocrflow-%d-", os.Getpid()) // the running pipeline's own working root
			for _, e := range left {
				if e.IsDir() && strings.HasPrefix(e.Name(), own) {
					inside, err := os.ReadDir(filepath.Join(tmp, e.Name()))
					require.NoError(t, err)
					assert.Empty(t, inside, "temp files left behind in the working root")
					continue
				}
				assert.False(t, strings.HasPrefix(e.Name(), "ocrflow-"), "temp files left behind: %s", e.Name())
			}
		})
	}
}

// noLength hides Content-Length so the server streams chunked.
type noLength struct{ http.ResponseWriter }

func (n noLength) WriteHeader(code int) {
	n.Header().Del("Content-Length")
	n.ResponseWriter.WriteHeader(code)
}

func (n noLength) Write(b []byte) (int, error) {
	n.Header().Del("Content-Length")
	return n.ResponseWriter.Write(b)
}

func TestSimpleContent_sources_by_s3_location_and_presigned_url(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	pdf, err := os.ReadFile(filepath.Join(testdata, "report.pdf"))
	require.NoError(t, err)
	// The platform's own bucket, outside simple-content: put the PDF there
	// with aws-sdk-go-v2.
	require.NoError(t, h.srv.CreateBucket("inbox"))
	s3c := s3.New(s3.Options{
		BaseEndpoint: aws.String(h.srv.S3URL()), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""), RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	_, err = s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("inbox"), Key: aws.String("scans/report.pdf"), Body: bytes.NewReader(pdf)})
	require.NoError(t, err)
	// A content record for it (its own object stays empty: the bytes come
	// from the location).
	parent := h.uploadBytes("report.pdf", nil, tenantA, ownerA, false, true)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(pdf) }))
	t.Cleanup(other.Close)

	for _, tc := range []struct {
		name         string
		spec         jobSpec
		wantS3Get    string // request path the source must be read from
		wantFailMsg  string
		wantFailType failure.Type
	}{
		{"s3_location", jobSpec{location: "s3://inbox/scans/report.pdf"}, "S3 GET /inbox/scans/report.pdf", "", ""},
		{"missing_s3_object", jobSpec{location: "s3://inbox/scans/none.pdf"}, "S3 GET /inbox/scans/none.pdf", "NoSuchKey", failure.TypePermanent},
		{"presigned_get_on_an_unlisted_host", jobSpec{presignedGet: other.URL + "/report.pdf?X-Amz-Signature=s"}, "", "not in SOURCE_ALLOWED_HOSTS", failure.TypePermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.traffic.reset()
			tc.spec.id = "sc-src-" + strings.ReplaceAll(tc.name, "_", "-")
			tc.spec.contentID, tc.spec.tenant, tc.spec.hints = parent, tenantA, map[string]string{"force": "true"}
			h.submit(tc.spec)
			evs := h.wait(tc.spec.id)
			last := evs[len(evs)-1]
			if tc.wantFailMsg == "" {
				c := completed(t, last)
				assert.Equal(t, 6, c.PageCount, "completed = %+v, want the 6 pages of report.pdf", c)
			} else {
				require.Equal(t, events.TypeJobFailed, last.Type(), "ended with %s %s, want %s failure", last.Type(), last.Data(), tc.wantFailType)
				var f events.JobFailed
				require.NoError(t, events.Decode(last, &f))
				assert.Equal(t, string(tc.wantFailType), f.ErrorType, "failed = %+v", f)
				assert.Contains(t, f.Message, tc.wantFailMsg, "failed = %+v", f)
				assert.NotContains(t, f.Message, "X-Amz-Signature", "failure message leaks a presigned query")
			}
			if tc.wantS3Get != "" {
				assert.Equal(t, 1, h.traffic.count(tc.wantS3Get), "times the source was read from %s", tc.wantS3Get)
			}
			assert.Zero(t, h.traffic.count("API GET /api/v5/files/"+parent), "times the content's own download url was used")
		})
	}
}
