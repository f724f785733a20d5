package simplecontent_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/simplecontent/embedded"
)

func newStore(t *testing.T) (*simplecontent.Store, *simplecontent.Client) {
	t.Helper()
	_, cl := startServer(t, embedded.Config{}, nil)
	s, err := simplecontent.NewStore(simplecontent.StoreConfig{Client: cl})
	require.NoError(t, err)
	return s, cl
}

func result(job, parent, md string) content.Result {
	return content.Result{
		JobID: job, ContentID: parent, SourceName: "scan.pdf", Markdown: []byte(md),
		IdempotencyKey: content.IdempotencyKey(parent, "1", "m", "default"),
		Metadata:       map[string]any{"page_count": 2, "pages_by_route": map[string]int{"gpu": 1, "text": 1}},
	}
}

func count(t *testing.T, cl *simplecontent.Client, parent string) []simplecontent.Content {
	t.Helper()
	list, err := cl.ListDerived(t.Context(), parent)
	require.NoError(t, err)
	return list
}

func TestStore_Store_is_idempotent_per_job(t *testing.T) {
	s, cl := newStore(t)
	parent := upload(t, cl, "scan.pdf", "application/pdf", "%PDF")
	a, err := s.Store(t.Context(), result("j1", parent, "# one"))
	require.NoError(t, err)
	again, err := s.Store(t.Context(), result("j1", parent, "# one"))
	require.NoError(t, err)
	assert.Equal(t, a, again, "second Store of job j1: want the same derived content")
	assert.Len(t, count(t, cl, parent), 1, "derived after the second Store of job j1: want the same one")
	b, err := s.Store(t.Context(), result("j2", parent, "# two"))
	require.NoError(t, err)
	assert.NotEqual(t, a, b, "another job must create its own derived content")
	assert.Len(t, count(t, cl, parent), 2, "another job must create its own derived content")
	assert.Equal(t, "# two", download(t, cl, b), "derived bytes")
}

func TestStore_Existing_finds_only_finished_results_with_the_key(t *testing.T) {
	s, cl := newStore(t)
	parent := upload(t, cl, "scan.pdf", "application/pdf", "%PDF")
	r := result("j1", parent, "# one")
	id, err := s.Store(t.Context(), r)
	require.NoError(t, err)
	// A failure trace with the same key must never be reused.
	require.NoError(t, s.RecordFailure(t.Context(), content.Failure{JobID: "j0", ContentID: parent, IdempotencyKey: r.IdempotencyKey, ErrorType: "permanent", Message: "x"}))
	j := job.Job{ID: "j9", ContentID: parent, TenantID: tenant}
	for _, tc := range []struct {
		name   string
		j      job.Job
		key    string
		wantOK bool
	}{
		{"same_key", j, r.IdempotencyKey, true},
		{"other_model", j, content.IdempotencyKey(parent, "1", "other", "default"), false},
		{"other_pipeline_version", j, content.IdempotencyKey(parent, "2", "m", "default"), false},
		{"other_mode", j, content.IdempotencyKey(parent, "1", "m", "gundam"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok, err := s.Existing(t.Context(), tc.j, tc.key)
			require.NoError(t, err)
			require.Equal(t, tc.wantOK, ok, "Existing = %+v, ok", d)
			if ok {
				assert.Equal(t, id, d.Ref, "Existing ref")
				assert.Equal(t, 2, d.PageCount, "Existing page count")
				assert.Equal(t, 1, d.PagesByRoute["text"], "Existing pages by route text")
			}
		})
	}
	_, _, err = s.Existing(t.Context(), job.Job{ID: "j8", ContentID: parent, TenantID: "99999999-9999-4999-8999-999999999999"}, r.IdempotencyKey)
	assert.Equal(t, failure.TypePermanent, failure.Classify(err), "Existing for another tenant = %v, want a permanent error", err)
}

func TestStore_RecordFailure_leaves_one_trace_where_it_may(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(t *testing.T, s *simplecontent.Store, cl *simplecontent.Client) (parent string, f content.Failure)
		wantTraces int
		wantOthers int // derived contents that are not traces
	}{
		{"recorded_once_even_if_called_twice", func(t *testing.T, s *simplecontent.Store, cl *simplecontent.Client) (string, content.Failure) {
			p := upload(t, cl, "a.pdf", "application/pdf", "%PDF")
			f := content.Failure{JobID: "j", ContentID: p, TenantID: tenant, ErrorType: "validation", Message: "unsupported"}
			require.NoError(t, s.RecordFailure(t.Context(), f))
			return p, f
		}, 1, 0},
		{"another_tenant_gets_none", func(t *testing.T, s *simplecontent.Store, cl *simplecontent.Client) (string, content.Failure) {
			p := upload(t, cl, "a.pdf", "application/pdf", "%PDF")
			return p, content.Failure{JobID: "j", ContentID: p, TenantID: "99999999-9999-4999-8999-999999999999", ErrorType: "permanent", Message: "x"}
		}, 0, 0},
		{"parent_not_uploaded_gets_none", func(t *testing.T, s *simplecontent.Store, cl *simplecontent.Client) (string, content.Failure) {
			f, err := cl.CreateFile(t.Context(), simplecontent.NewFile{OwnerID: owner, OwnerType: "user", TenantID: tenant, FileName: "a.pdf", DocumentType: "document"})
			require.NoError(t, err)
			return f.ContentID, content.Failure{JobID: "j", ContentID: f.ContentID, ErrorType: "validation", Message: "not uploaded"}
		}, 0, 0},
		{"unfinished_result_of_the_job_is_replaced", func(t *testing.T, s *simplecontent.Store, cl *simplecontent.Client) (string, content.Failure) {
			p := upload(t, cl, "a.pdf", "application/pdf", "%PDF")
			_, err := cl.CreateDerived(t.Context(), p, simplecontent.NewDerived{
				DerivationType: simplecontent.DerivationType, OwnerID: owner, TenantID: tenant, Status: simplecontent.StatusProcessing,
				Params: map[string]any{"generator": "ocrflow", "variant": "ocr_markdown", "job_id": "j", "state": "processing"},
			})
			require.NoError(t, err)
			return p, content.Failure{JobID: "j", ContentID: p, ErrorType: "permanent", Message: "no manifest"}
		}, 1, 0},
		{"missing_content_gets_none", func(t *testing.T, s *simplecontent.Store, cl *simplecontent.Client) (string, content.Failure) {
			return "", content.Failure{JobID: "j", ContentID: "33333333-3333-4333-8333-333333333333", ErrorType: "validation", Message: "x"}
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, cl := newStore(t)
			parent, f := tc.setup(t, s, cl)
			require.NoError(t, s.RecordFailure(t.Context(), f))
			if parent == "" {
				return
			}
			traces, others := 0, 0
			for _, d := range count(t, cl, parent) {
				m, err := cl.GetMetadata(t.Context(), d.ID)
				require.NoError(t, err)
				if d.Status == simplecontent.StatusFailed && m.Custom["state"] == "failed" &&
					m.Custom["error_type"] == f.ErrorType && m.Custom["error_message"] == f.Message {
					traces++
				} else {
					others++
				}
			}
			assert.Equal(t, tc.wantTraces, traces, "failure traces")
			assert.Equal(t, tc.wantOthers, others, "other derived contents")
		})
	}
}

func TestStore_Fetch_checks_what_the_job_says(t *testing.T) {
	s, cl := newStore(t)
	body := "%PDF-1.4 test body"
	parent := upload(t, cl, "scan.pdf", "application/pdf", body)
	sum := sha256.Sum256([]byte(body))
	f, err := cl.GetFile(t.Context(), parent)
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		j        job.Job
		max      int64
		wantType failure.Type // "" = success
		wantMsg  string
	}{
		{"download_url_with_matching_checksum", job.Job{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}, 0, "", ""},
		{"presigned_get", job.Job{PresignedGet: f.DownloadURL}, 0, "", ""},
		{"checksum_in_upper_case", job.Job{SHA256: strings.ToUpper(hex.EncodeToString(sum[:]))}, 0, "", ""},
		{"checksum_mismatch", job.Job{SHA256: strings.Repeat("ab", 32)}, 0, failure.TypeValidation, "does not match"},
		{"limit_exactly_the_size", job.Job{}, int64(len(body)), "", ""},
		{"limit_one_below", job.Job{}, int64(len(body)) - 1, failure.TypeValidation, "MAX_SOURCE_BYTES"},
		{"no_content_id", job.Job{PresignedGet: f.DownloadURL}, 0, failure.TypeValidation, "names no content id"},
		{"s3_location_without_s3_access", job.Job{Location: "s3://bucket/key"}, 0, failure.TypePermanent, "need S3 access"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.j.ID = "j"
			if tc.name != "no_content_id" {
				tc.j.ContentID = parent
			}
			dst := filepath.Join(t.TempDir(), "source")
			src, err := s.Fetch(t.Context(), tc.j, dst, tc.max)
			if tc.wantType == "" {
				require.NoError(t, err)
				b, _ := os.ReadFile(dst)
				assert.Equal(t, body, string(b), "fetched bytes")
				assert.Equal(t, "scan.pdf", src.Name, "source name")
				assert.Equal(t, "application/pdf", src.MIME, "source mime")
				assert.Equal(t, int64(len(body)), src.Size, "source size")
				return
			}
			require.Error(t, err, "want %s with %q", tc.wantType, tc.wantMsg)
			assert.Equal(t, tc.wantType, failure.Classify(err), "class of %v", err)
			assert.ErrorContains(t, err, tc.wantMsg)
			_, serr := os.Stat(dst)
			assert.ErrorIs(t, serr, fs.ErrNotExist, "a failed fetch left %s behind", dst)
		})
	}
}

// TestStore_Store_keeps_the_newest_result_current: a later result with the
// same key supersedes an earlier one, and an earlier job that stores (or
// finishes storing) after it never supersedes the newer — so two results
// stored at the same time leave exactly one current, not none.
func TestStore_Store_keeps_the_newest_result_current(t *testing.T) {
	s, cl := newStore(t)
	parent := upload(t, cl, "scan.pdf", "application/pdf", "%PDF")
	a, err := s.Store(t.Context(), result("j1", parent, "# one"))
	require.NoError(t, err)
	b, err := s.Store(t.Context(), result("j2", parent, "# two"))
	require.NoError(t, err)
	// j1's store is retried (it did not hear back): it finds its result
	// done and supersedes what is older than it — not j2's.
	again, err := s.Store(t.Context(), result("j1", parent, "# one"))
	require.NoError(t, err)
	assert.Equal(t, a, again)
	states := map[string]any{}
	for _, c := range count(t, cl, parent) {
		m, err := cl.GetMetadata(t.Context(), c.ID)
		require.NoError(t, err)
		states[c.ID] = m.Custom[simplecontent.MetaState]
	}
	assert.Equal(t, map[string]any{a: simplecontent.StateSuperseded, b: simplecontent.StateCompleted}, states)
	d, ok, err := s.Existing(t.Context(), job.Job{ID: "j3", ContentID: parent}, content.IdempotencyKey(parent, "1", "m", "default"))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, b, d.Ref, "the newer result is the one reused")
}
