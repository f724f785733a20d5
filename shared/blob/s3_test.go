package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/scratch/scratchtest"
)

// fakeS3 starts an in-process S3 server with one bucket and returns a
// path-style client for it.
func fakeS3(t *testing.T, bucket string) (*s3.Client, string) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
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
				if err != nil {
					t.Fatal(err)
				}
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
	a, _ := blob.NewS3(client, "scratch", "p/")
	b, _ := blob.NewS3(client, "scratch", "p/")
	ctx := t.Context()
	if err := a.Create(ctx, "jobs/j/final.lock", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	err := b.Create(ctx, "jobs/j/final.lock", strings.NewReader("b"))
	if !errors.Is(err, scratch.ErrExists) {
		t.Fatalf("second create = %v, want ErrExists", err)
	}
	_, raw := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("scratch"), Key: aws.String("p/jobs/j/final.lock"), Body: strings.NewReader("c"), IfNoneMatch: aws.String("*"),
	})
	if raw == nil || !strings.Contains(raw.Error(), "412") {
		t.Fatalf("raw conditional put = %v, want HTTP 412 from the server", raw)
	}
}

// TestS3_put_streams_a_body_of_unknown_length sends more than one
// multipart part through a reader that is not seekable and has no length.
func TestS3_put_streams_a_body_of_unknown_length(t *testing.T) {
	client, _ := fakeS3(t, "scratch")
	s, _ := blob.NewS3(client, "scratch", "")
	want := make([]byte, 9<<20) // over the 8 MiB part size
	if _, err := rand.Read(want); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { _, err := pw.Write(want); pw.CloseWithError(err) }()
	if err := s.Put(t.Context(), "jobs/big/source", pr); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(t.Context(), "jobs/big/source")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want the %d written", len(got), len(want))
	}
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
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(t.Context(), "jobs/x/a", strings.NewReader("v")); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.Exists(t.Context(), "jobs/x/a"); err != nil || !ok {
				t.Fatalf("Exists = %v, %v", ok, err)
			}
		})
	}
	if _, err := blob.Open(context.Background(), "s3://scratch", blob.S3Options{Endpoint: "minio:9000"}); err == nil {
		t.Fatal("an endpoint without scheme was accepted")
	}
}
