package simplecontent_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/egress"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/simplecontent/embedded"
)

const (
	tenant = "11111111-1111-4111-8111-111111111111"
	owner  = "22222222-2222-4222-8222-222222222222"
)

// startServer runs the real v5 handlers in-process and returns a client
// allowed to transfer to its S3 server.
func startServer(t *testing.T, cfg embedded.Config, tune func(*simplecontent.Config)) (*embedded.Server, *simplecontent.Client) {
	t.Helper()
	srv, err := embedded.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, srv.Close(ctx), "close embedded simple-content")
	})
	policy, err := egress.NewPolicy(egress.HostOf(srv.URL()), egress.HostOf(srv.S3URL()))
	require.NoError(t, err)
	c := simplecontent.Config{BaseURL: srv.URL(), APIKey: srv.APIKey(), Transfers: policy.Client(), Backoff: time.Millisecond}
	if tune != nil {
		tune(&c)
	}
	cl, err := simplecontent.New(c)
	require.NoError(t, err)
	return srv, cl
}

// upload stores body as a new original content the way a platform does:
// create → presigned PUT → complete.
func upload(t *testing.T, cl *simplecontent.Client, name, mime, body string) string {
	t.Helper()
	ctx := t.Context()
	f, err := cl.CreateFile(ctx, simplecontent.NewFile{
		OwnerID: owner, OwnerType: "user", TenantID: tenant, FileName: name, MimeType: mime,
		FileSize: int64(len(body)), DocumentType: "document",
	})
	require.NoError(t, err)
	require.NoError(t, cl.Upload(ctx, f.UploadURL, strings.NewReader(body), int64(len(body)), mime))
	require.NoError(t, cl.CompleteFile(ctx, f.ContentID))
	return f.ContentID
}

func download(t *testing.T, cl *simplecontent.Client, id string) string {
	t.Helper()
	f, err := cl.GetFile(t.Context(), id)
	require.NoError(t, err)
	require.NotEmpty(t, f.DownloadURL, "content %s (status %s) has no download url", id, f.Status)
	resp, err := cl.Download(t.Context(), f.DownloadURL, 0)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestClient_v5_flow_against_the_real_handlers walks the whole flow of the
// reference: upload an original, read it back, derive, upload the derived
// bytes, complete, list, merge metadata.
func TestClient_v5_flow_against_the_real_handlers(t *testing.T) {
	_, cl := startServer(t, embedded.Config{}, nil)
	ctx := t.Context()
	id := upload(t, cl, "scan.pdf", "application/pdf", "%PDF-1.4 fake")

	c, err := cl.GetContent(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, simplecontent.StatusUploaded, c.Status, "content status")
	assert.Equal(t, tenant, c.TenantID, "content tenant")
	assert.Equal(t, owner, c.OwnerID, "content owner")
	assert.Equal(t, "scan.pdf", c.FileName, "content file name")
	assert.Equal(t, "application/pdf", c.MimeType, "content mime type")
	assert.EqualValues(t, 13, c.FileSize, "content file size")
	assert.Equal(t, "%PDF-1.4 fake", download(t, cl, id), "downloaded")

	d, err := cl.CreateDerived(ctx, id, simplecontent.NewDerived{
		DerivationType: "ocr_markdown", OwnerID: owner, TenantID: tenant, Status: simplecontent.StatusProcessing,
		Params: map[string]any{"marker": "x"},
	})
	require.NoError(t, err)
	assert.Equal(t, simplecontent.StatusProcessing, d.Status, "derived status")
	assert.Equal(t, id, d.ParentID, "derived parent")
	o, err := cl.CreateObject(ctx, d.ID, simplecontent.NewObject{MimeType: "text/markdown", FileSize: 7, FileName: "scan.pdf.md"})
	require.NoError(t, err)
	require.NoError(t, cl.Upload(ctx, o.UploadURL, strings.NewReader("# hello"), 7, "text/markdown"))
	require.NoError(t, cl.CompleteFile(ctx, d.ID))
	assert.Equal(t, "# hello", download(t, cl, d.ID), "derived bytes")
	err = cl.MergeMetadata(ctx, d.ID, func(m *simplecontent.Metadata) {
		m.ContentType, m.FileName, m.FileSize = "text/markdown", "scan.pdf.md", 7
		m.Custom["engine"] = "fake"
	})
	require.NoError(t, err)
	m, err := cl.GetMetadata(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, "x", m.Custom["marker"], "metadata after merge: the create-time marker must survive the PUT")
	assert.Equal(t, "fake", m.Custom["engine"], "metadata after merge")
	assert.Equal(t, "scan.pdf.md", m.FileName, "metadata after merge")
	assert.Equal(t, "text/markdown", m.ContentType, "metadata after merge")
	list, err := cl.ListDerived(ctx, id)
	require.NoError(t, err)
	require.Len(t, list, 1, "derived list")
	assert.Equal(t, d.ID, list[0].ID, "derived list")
	assert.Equal(t, simplecontent.StatusUploaded, list[0].Status, "derived list")
	objs, err := cl.ListObjects(ctx, d.ID)
	require.NoError(t, err)
	assert.Len(t, objs, 1, "objects")
	require.NoError(t, cl.DeleteContent(ctx, d.ID))
	list, err = cl.ListDerived(ctx, id)
	require.NoError(t, err, "derived list after delete")
	assert.Empty(t, list, "derived list after delete")
}

func TestClient_errors_are_classified_and_carry_the_body(t *testing.T) {
	for _, tc := range []struct {
		name     string
		key      string
		call     func(cl *simplecontent.Client) error
		wantCode int
		wantType failure.Type
		wantMsg  string
	}{
		{"missing_content_is_404_permanent", "", func(cl *simplecontent.Client) error {
			_, err := cl.GetContent(t.Context(), "33333333-3333-4333-8333-333333333333")
			return err
		}, 404, failure.TypePermanent, "not found"},
		{"bad_uuid_is_400_permanent", "", func(cl *simplecontent.Client) error {
			_, err := cl.GetContent(t.Context(), "not-a-uuid")
			return err
		}, 400, failure.TypePermanent, "Invalid content ID"},
		{"wrong_api_key_is_401_with_the_text_body", "wrong", func(cl *simplecontent.Client) error {
			_, err := cl.GetContent(t.Context(), "33333333-3333-4333-8333-333333333333")
			return err
		}, 401, failure.TypePermanent, "invalid api key"},
		{"parent_not_ready_is_500_transient_with_the_reason", "", func(cl *simplecontent.Client) error {
			f, err := cl.CreateFile(t.Context(), simplecontent.NewFile{OwnerID: owner, OwnerType: "user", TenantID: tenant, FileName: "a.pdf", DocumentType: "document"})
			if err != nil {
				return err
			}
			_, err = cl.CreateDerived(t.Context(), f.ContentID, simplecontent.NewDerived{DerivationType: "ocr_markdown", OwnerID: owner, TenantID: tenant})
			return err
		}, 500, failure.TypeTransient, "parent content not ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cl := startServer(t, embedded.Config{}, func(c *simplecontent.Config) {
				if tc.key != "" {
					c.APIKey = tc.key
				}
				c.Attempts = 1
			})
			err := tc.call(cl)
			require.True(t, simplecontent.IsStatus(err, tc.wantCode), "err = %v, want status %d", err, tc.wantCode)
			assert.Equal(t, tc.wantType, failure.Classify(err), "class of %v", err)
			assert.ErrorContains(t, err, tc.wantMsg, "want the body in the error")
		})
	}
}

// flaky answers the first n requests matching match with status.
func flaky(n int32, status int, match func(*http.Request) bool, hits *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) && hits.Add(1) <= n {
				http.Error(w, "injected failure", status)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestClient_retries_transient_answers_of_idempotent_calls_only(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  int32
		status    int
		method    string
		call      func(cl *simplecontent.Client, id string) error
		wantErr   bool
		wantCalls int32
	}{
		{"get_503_twice_then_ok", 2, 503, http.MethodGet, func(cl *simplecontent.Client, id string) error {
			_, err := cl.GetContent(t.Context(), id)
			return err
		}, false, 3},
		{"get_500_beyond_attempts_fails_transient", 5, 500, http.MethodGet, func(cl *simplecontent.Client, id string) error {
			_, err := cl.GetContent(t.Context(), id)
			return err
		}, true, 3},
		{"get_404_is_not_retried", 5, 404, http.MethodGet, func(cl *simplecontent.Client, id string) error {
			_, err := cl.GetContent(t.Context(), id)
			return err
		}, true, 1},
		{"create_derived_500_is_not_repeated", 5, 500, http.MethodPost, func(cl *simplecontent.Client, id string) error {
			_, err := cl.CreateDerived(t.Context(), id, simplecontent.NewDerived{DerivationType: "ocr_markdown", OwnerID: owner, TenantID: tenant})
			return err
		}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			var armed atomic.Bool
			match := func(r *http.Request) bool {
				return armed.Load() && r.Method == tc.method && strings.HasPrefix(r.URL.Path, "/api/v5/contents/")
			}
			_, cl := startServer(t, embedded.Config{APIMiddleware: flaky(tc.failures, tc.status, match, &hits)}, nil)
			id := upload(t, cl, "a.pdf", "application/pdf", "x")
			armed.Store(true)
			err := tc.call(cl, id)
			if tc.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tc.wantCalls, hits.Load(), "calls that reached the server")
		})
	}
}

func TestClient_presigned_urls_stay_out_of_error_messages(t *testing.T) {
	_, cl := startServer(t, embedded.Config{}, func(c *simplecontent.Config) { c.Attempts = 1 })
	f, err := cl.CreateFile(t.Context(), simplecontent.NewFile{OwnerID: owner, OwnerType: "user", TenantID: tenant, FileName: "a.pdf", DocumentType: "document"})
	require.NoError(t, err)
	// Nothing was uploaded: a GET of the object's presigned URL answers
	// NoSuchKey (gofakes3 does not check signatures).
	_, err = cl.Download(t.Context(), f.UploadURL, time.Second)
	require.Error(t, err, "download of a missing object succeeded")
	assert.NotContains(t, err.Error(), "X-Amz-Signature", "error leaks the presigned query")
	assert.NotContains(t, err.Error(), "X-Amz-Credential", "error leaks the presigned query")
	assert.True(t, simplecontent.IsStatus(err, 404), "err = %v, want a 404 carrying S3's NoSuchKey", err)
	assert.ErrorContains(t, err, "NoSuchKey", "want a 404 carrying S3's NoSuchKey")
}

func TestConfig_is_validated_at_construction(t *testing.T) {
	for _, tc := range []struct {
		name, url, want string
	}{
		{"empty", "", "required"},
		{"not_http", "ftp://x", "not an http(s) base URL"},
		{"api_prefix_included", "http://sc:4000/api/v5", "give the base URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := simplecontent.New(simplecontent.Config{BaseURL: tc.url})
			assert.ErrorContains(t, err, tc.want)
		})
	}
	_, err := simplecontent.New(simplecontent.Config{BaseURL: "http://sc:4000"})
	assert.NoError(t, err)
}
