package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/scratch/scratchtest"
)

// fakeS3 starts an in-process S3 server with one bucket and returns a
// path-style client for it.
func fakeS3(t *testing.T, bucket string) (*s3.Client, string) {
	t.Helper()
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket(bucket))
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Region: "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider("test", "test", ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	return client, srv.URL
}

func TestS3Conformance(t *testing.T) {
	for _, prefix := range []string{"", "ocrflow/scratch/"} {
		t.Run("prefix="+strings.TrimSuffix(prefix, "/"), func(t *testing.T) {
			scratchtest.Run(t, func(t *testing.T) scratchtest.Store {
				client, _ := fakeS3(t, "scratch")
				s, err := blob.NewS3(client, "scratch", prefix)
				require.NoError(t, err)
				return s
			})
		})
	}
}

// TestS3_create_is_a_real_conditional_put checks that the lock's
// exclusivity comes from S3 (412 on If-None-Match: *), not from the store:
// a second store on the same bucket must lose too.
func TestS3_create_is_a_real_conditional_put(t *testing.T) {
	client, _ := fakeS3(t, "scratch")
	a, err := blob.NewS3(client, "scratch", "p/")
	require.NoError(t, err)
	b, err := blob.NewS3(client, "scratch", "p/")
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, a.Create(ctx, "jobs/j/final.lock", strings.NewReader("a")))
	err = b.Create(ctx, "jobs/j/final.lock", strings.NewReader("b"))
	assert.ErrorIs(t, err, scratch.ErrExists, "second create")
	_, raw := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("scratch"), Key: aws.String("p/jobs/j/final.lock"), Body: strings.NewReader("c"), IfNoneMatch: aws.String("*"),
	})
	assert.ErrorContains(t, raw, "412", "raw conditional put: want HTTP 412 from the server")
}

// TestS3_put_streams_a_body_of_unknown_length sends more than one
// multipart part through a reader that is not seekable and has no length.
func TestS3_put_streams_a_body_of_unknown_length(t *testing.T) {
	client, _ := fakeS3(t, "scratch")
	s, err := blob.NewS3(client, "scratch", "")
	require.NoError(t, err)
	want := make([]byte, 9<<20) // over the 8 MiB part size
	_, err = rand.Read(want)
	require.NoError(t, err)
	pr, pw := io.Pipe()
	go func() { _, err := pw.Write(want); pw.CloseWithError(err) }()
	require.NoError(t, s.Put(t.Context(), "jobs/big/source", pr))
	rc, err := s.Get(t.Context(), "jobs/big/source")
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	// Not assert.Equal: its diff of 9 MiB would drown the message.
	assert.True(t, bytes.Equal(got, want), "read back %d bytes, want the %d written", len(got), len(want))
}

func TestOpen_s3_url(t *testing.T) {
	_, endpoint := fakeS3(t, "scratch")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	for _, tc := range []struct {
		name, url string
		wantErr   string
	}{
		{"bucket_and_prefix", "s3://scratch/ocrflow", ""},
		{"bucket_only", "s3://scratch", ""},
		{"no_bucket", "s3:///x", "want s3://bucket"},
		{"unclean_prefix", "s3://scratch/a/../b", "not a clean key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := blob.Open(context.Background(), tc.url, blob.S3Options{Endpoint: endpoint, PathStyle: true})
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.NoError(t, s.Put(t.Context(), "jobs/x/a", strings.NewReader("v")))
			ok, err := s.Exists(t.Context(), "jobs/x/a")
			require.NoError(t, err, "Exists")
			assert.True(t, ok, "Exists after Put")
		})
	}
	_, err := blob.Open(context.Background(), "s3://scratch", blob.S3Options{Endpoint: "minio:9000"})
	assert.Error(t, err, "an endpoint without scheme was accepted")
}
