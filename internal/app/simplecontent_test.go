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
}

type scOpts struct {
	env     map[string]string // configuration overrides
	tempDir string            // TMPDIR for convert's working files
}

func newSCHarness(t *testing.T, o scOpts) *scHarness {
	t.Helper()
	ctx := t.Context()
	tr := newTraffic()
	srv, err := embedded.Start(embedded.Config{APIMiddleware: tr.middleware("API"), S3Middleware: tr.middleware("S3")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close simple-content: %v", err)
		}
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
		"OCR_ENGINE": "fake", "RECOGNIZE_WORKERS": "3", "CONVERT_WORKERS": "1",
		"CONTENT_STORE": "simple-content", "SIMPLE_CONTENT_URL": srv.URL(), "SIMPLE_CONTENT_API_KEY": srv.APIKey(),
		"S3_ENDPOINT": srv.S3URL(), "S3_PATH_STYLE": "true",
	}
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	store, err := app.OpenContent(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := store.(*simplecontent.Store)
	if !ok {
		t.Fatalf("CONTENT_STORE=simple-content built a %T", store)
	}
	t.Cleanup(sc.Client().CloseIdleConnections)

	policy, _ := egress.NewPolicy(egress.HostOf(srv.URL()), egress.HostOf(srv.S3URL()))
	api, err := simplecontent.New(simplecontent.Config{BaseURL: srv.URL(), APIKey: srv.APIKey(), Transfers: policy.Client(), Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.CloseIdleConnections)

	blobs, err := blob.NewDir(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	sv := serve(t, cfg, app.Options{Scratch: blobs, Content: store, Engine: &engine.Fake{}}, "")
	h := &scHarness{t: t, srv: srv, api: api, traffic: tr, rt: sv.rt, journal: sv.journal}
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
	if err != nil {
		h.t.Fatal(err)
	}
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
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.api.Upload(ctx, f.UploadURL, bytes.NewReader(body), int64(len(body)), "application/octet-stream"); err != nil {
		h.t.Fatal(err)
	}
	if complete {
		if err := h.api.CompleteFile(ctx, f.ContentID); err != nil {
			h.t.Fatal(err)
		}
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
	if err != nil {
		h.t.Fatal(err)
	}
	var raw contracts.Job
	if err := json.Unmarshal(e.Data(), &raw); err != nil {
		h.t.Fatal(err)
	}
	raw.PresignedGet = s.presignedGet
	raw.File.Blob.Size = s.size
	if s.sha256 != "" {
		raw.File.Attributes["sha256"] = s.sha256
	}
	if err := e.SetData(event.ApplicationJSON, raw); err != nil {
		h.t.Fatal(err)
	}
	return e
}

func (h *scHarness) submit(s jobSpec) event.Event {
	h.t.Helper()
	e := h.event(s)
	if err := h.rt.Send(h.t.Context(), e); err != nil {
		h.t.Fatal(err)
	}
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
	if last.Type() != events.TypeJobFailed {
		h.t.Fatalf("job %s ended with %s (%s), want failed", id, last.Type(), last.Data())
	}
	var f events.JobFailed
	if err := events.Decode(last, &f); err != nil {
		h.t.Fatal(err)
	}
	return f
}

// derived returns the parent's derived contents with their metadata.
func (h *scHarness) derived(parent string) ([]simplecontent.Content, []simplecontent.Metadata) {
	h.t.Helper()
	list, err := h.api.ListDerived(h.t.Context(), parent)
	if err != nil {
		h.t.Fatal(err)
	}
	metas := make([]simplecontent.Metadata, len(list))
	for i, c := range list {
		if metas[i], err = h.api.GetMetadata(h.t.Context(), c.ID); err != nil {
			h.t.Fatal(err)
		}
	}
	return list, metas
}

// download fetches a content's bytes the way a platform user does.
func (h *scHarness) download(id string) string {
	h.t.Helper()
	f, err := h.api.GetFile(h.t.Context(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	if f.DownloadURL == "" {
		h.t.Fatalf("content %s (status %s) has no download url", id, f.Status)
	}
	resp, err := h.api.Download(h.t.Context(), f.DownloadURL, 10*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
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
	if c.Reused || c.PageCount != 6 || c.ContentID != parent {
		t.Fatalf("completed = %+v", c)
	}
	list, metas := h.derived(parent)
	if len(list) != 1 || list[0].ID != c.DerivedContentID {
		t.Fatalf("derived of %s = %+v, want exactly the completed one %s", parent, list, c.DerivedContentID)
	}
	d, m := list[0], metas[0]
	if d.Status != simplecontent.StatusUploaded || d.ParentID != parent || d.TenantID != tenantA || d.OwnerID != ownerA {
		t.Fatalf("derived content = %+v: want uploaded, under the parent, with the parent's tenant and owner", d)
	}
	md := h.download(d.ID)
	assertInOrderOnce(t, md, expectedPages(t, "report.pdf"))

	if m.ContentType != "text/markdown" || m.FileName != "report.pdf.md" || m.FileSize != int64(len(md)) {
		t.Fatalf("metadata = %+v, want text/markdown, report.pdf.md, %d bytes", m, len(md))
	}
	for k, want := range map[string]any{
		"engine": "fake", "model": "fake", "mode": "default", "pipeline_version": content.PipelineVersion,
		"source_format": "pdf", "page_count": 6.0, "generator": "ocrflow", "variant": "ocr_markdown",
		"job_id": "sc-flow", "state": "completed", "idempotency_key": content.IdempotencyKey(parent, content.PipelineVersion, "fake", "default"),
	} {
		if got := m.Custom[k]; got != want {
			t.Errorf("metadata %s = %#v, want %#v", k, got, want)
		}
	}
	if r, _ := m.Custom["pages_by_route"].(map[string]any); r["gpu"] != 6.0 {
		t.Errorf("pages_by_route = %v, want gpu 6", m.Custom["pages_by_route"])
	}
	for _, k := range []string{"processing_time_ms", "failed_pages", "sha256", "completed_at"} {
		if _, ok := m.Custom[k]; !ok {
			t.Errorf("metadata lacks %s: %v", k, m.Custom)
		}
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
		run        func() (events.JobCompleted, bool) // false: the job ended no second time
		wantReused bool
		wantCount  int
	}{
		{"same_job_delivered_again", func() (events.JobCompleted, bool) {
			// A broker redelivery: the same event reaches convert again.
			reply, err := h.convert(t.Context(), first)
			if err != nil || reply != nil {
				t.Fatalf("redelivery = %v, %v; want nothing to do", reply, err)
			}
			return events.JobCompleted{}, false
		}, false, 1},
		{"new_job_same_content", func() (events.JobCompleted, bool) {
			h.submit(jobSpec{id: "sc-second", contentID: parent, tenant: tenantA})
			evs := h.wait("sc-second")
			if len(evs) != 1 {
				t.Fatalf("lifecycle %v: a reused job must complete at once", types(evs))
			}
			return completed(t, evs[0]), true
		}, true, 1},
		{"new_job_with_force", func() (events.JobCompleted, bool) {
			h.submit(jobSpec{id: "sc-forced", contentID: parent, tenant: tenantA, hints: map[string]string{"force": "true", "text_layer": "off"}})
			evs := h.wait("sc-forced")
			return completed(t, evs[len(evs)-1]), true
		}, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ended := tc.run()
			if ended && c.Reused != tc.wantReused {
				t.Fatalf("reused = %v, want %v", c.Reused, tc.wantReused)
			}
			if ended && tc.wantReused && (c.DerivedContentID != orig || c.PageCount != 1) {
				t.Fatalf("reused completion = %+v, want derived %s with its page count", c, orig)
			}
			if ended && !tc.wantReused && c.DerivedContentID == orig {
				t.Fatalf("forced job reported the old derived content %s", orig)
			}
			list, _ := h.derived(parent)
			if len(list) != tc.wantCount {
				t.Fatalf("%d derived contents, want %d: %+v", len(list), tc.wantCount, list)
			}
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
			if f.ErrorType != string(failure.TypePermanent) || !strings.Contains(f.Message, "does not own content") {
				t.Fatalf("failed = %+v, want permanent: does not own content", f)
			}
			if strings.Contains(f.Message, ownerA) || strings.Contains(f.Message, tenantA) && tc.tenant != tenantA {
				t.Fatalf("failure message names the real owner: %s", f.Message)
			}
			if n := h.traffic.count("S3 GET"); n != 0 {
				t.Fatalf("%d reads from S3: the source was downloaded", n)
			}
			if n := h.traffic.count("API GET /api/v5/files/"); n != 0 {
				t.Fatalf("%d download-url lookups for another tenant's content", n)
			}
			if list, _ := h.derived(parent); len(list) != 0 {
				t.Fatalf("the victim's content got derived contents: %+v", list)
			}
		})
	}
}

func TestSimpleContent_unusable_sources_fail_as_validation(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	pdf, err := os.ReadFile(filepath.Join(testdata, "report.pdf"))
	if err != nil {
		t.Fatal(err)
	}
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
			if f.ErrorType != string(failure.TypeValidation) || f.RetryCount != 0 || !strings.Contains(f.Message, tc.wantMsg) {
				t.Fatalf("failed = %+v, want validation, no retry, message with %q", f, tc.wantMsg)
			}
		})
	}
}

func TestSimpleContent_failed_job_leaves_a_failed_derived_content_as_trace(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	parent := h.uploadBytes("notes.txt", []byte("plain text, not a document\n"), tenantA, ownerA, true, true)
	h.submit(jobSpec{id: "sc-trace", contentID: parent, tenant: tenantA})
	f := h.failed("sc-trace")
	list, metas := h.derived(parent)
	if len(list) != 1 {
		t.Fatalf("derived = %+v, want one failure trace", list)
	}
	m := metas[0].Custom
	if list[0].Status != simplecontent.StatusFailed || m["state"] != "failed" || m["job_id"] != "sc-trace" ||
		m["error_type"] != f.ErrorType || m["error_message"] != f.Message {
		t.Fatalf("trace = %+v %v, want status failed with the job's error %+v", list[0], m, f)
	}
	// A redelivery of the failed job leaves one trace, not two.
	reply, err := h.convert(t.Context(), h.event(jobSpec{id: "sc-trace", contentID: parent, tenant: tenantA}))
	if err != nil {
		t.Fatal(err)
	}
	if reply != nil && reply.Type() != events.TypeJobFailed {
		t.Fatalf("redelivery replied %s", reply.Type())
	}
	if list, _ := h.derived(parent); len(list) != 1 {
		t.Fatalf("after redelivery %d derived contents, want 1", len(list))
	}
	// A later job for the same content does not reuse a failure.
	h.submit(jobSpec{id: "sc-trace-2", contentID: parent, tenant: tenantA})
	if f2 := h.failed("sc-trace-2"); f2.ErrorType != string(failure.TypeValidation) {
		t.Fatalf("second job = %+v", f2)
	}
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
			if got := fired.Load(); got != tc.want {
				t.Fatalf("fault fired %d times, want %d", got, tc.want)
			}
			if got := h.traffic.count("API DELETE"); got != tc.abandoned {
				t.Fatalf("%d derived contents deleted, want %d", got, tc.abandoned)
			}
			list, metas := h.derived(parent)
			if len(list) != 1 || list[0].ID != c.DerivedContentID {
				t.Fatalf("derived = %+v, want exactly the completed %s", list, c.DerivedContentID)
			}
			if list[0].Status != simplecontent.StatusUploaded || metas[0].Custom["state"] != "completed" {
				t.Fatalf("derived %+v state %v, want uploaded and completed", list[0], metas[0].Custom["state"])
			}
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
			if f.ErrorType != string(failure.TypeValidation) || !strings.Contains(f.Message, tc.wantMsg) {
				t.Fatalf("failed = %+v, want validation with %q", f, tc.wantMsg)
			}
			if n := h.traffic.count("S3 GET"); n != tc.wantS3Gets {
				t.Fatalf("%d source downloads, want %d", n, tc.wantS3Gets)
			}
			left, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range left {
				if strings.HasPrefix(e.Name(), "ocrflow-") {
					t.Fatalf("temp files left behind: %s", e.Name())
				}
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
	if err != nil {
		t.Fatal(err)
	}
	// The platform's own bucket, outside simple-content: put the PDF there
	// with aws-sdk-go-v2.
	if err := h.srv.CreateBucket("inbox"); err != nil {
		t.Fatal(err)
	}
	s3c := s3.New(s3.Options{
		BaseEndpoint: aws.String(h.srv.S3URL()), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""), RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("inbox"), Key: aws.String("scans/report.pdf"), Body: bytes.NewReader(pdf)}); err != nil {
		t.Fatal(err)
	}
	// A content record for it (its own object stays empty: the bytes come
	// from the location).
	parent := h.uploadBytes("report.pdf", nil, tenantA, ownerA, false, true)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pdf) }))
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
				if c.PageCount != 6 {
					t.Fatalf("completed = %+v, want the 6 pages of report.pdf", c)
				}
			} else {
				var f events.JobFailed
				if last.Type() != events.TypeJobFailed || events.Decode(last, &f) != nil ||
					f.ErrorType != string(tc.wantFailType) || !strings.Contains(f.Message, tc.wantFailMsg) {
					t.Fatalf("ended with %s %s, want %s failure with %q", last.Type(), last.Data(), tc.wantFailType, tc.wantFailMsg)
				}
				if strings.Contains(f.Message, "X-Amz-Signature") {
					t.Fatalf("failure message leaks a presigned query: %s", f.Message)
				}
			}
			if tc.wantS3Get != "" && h.traffic.count(tc.wantS3Get) != 1 {
				t.Fatalf("source was not read from %s", tc.wantS3Get)
			}
			if n := h.traffic.count("API GET /api/v5/files/" + parent); n != 0 {
				t.Fatalf("the content's own download url was used %d times", n)
			}
		})
	}
}
