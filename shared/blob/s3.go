package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/ocrflow/ocrflow/shared/scratch"
)

// S3Options configure the S3 client of an s3:// store or source.
type S3Options struct {
	// Endpoint is the S3 API URL for MinIO and other S3-compatible servers
	// (e.g. http://minio:9000); empty means AWS.
	Endpoint string
	// Region is the signing region (default us-east-1).
	Region string
	// PathStyle addresses buckets as /bucket/key instead of bucket.host
	// (MinIO needs it).
	PathStyle bool
}

// NewS3Client returns an S3 client with credentials from the default chain
// (environment, shared config, web identity, instance role). With a custom
// endpoint, checksums are computed only where the API requires them, which
// S3-compatible servers that predate the default integrity headers accept.
func NewS3Client(ctx context.Context, o S3Options) (*s3.Client, error) {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Endpoint != "" {
		if u, err := url.Parse(o.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("S3_ENDPOINT: %q is not an http(s) URL such as http://minio:9000", o.Endpoint)
		}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(o.Region))
	if err != nil {
		return nil, fmt.Errorf("s3 config: %w", err)
	}
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		so.UsePathStyle = o.PathStyle
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	}), nil
}

// ParseS3URL splits s3://bucket/prefix into its bucket and key prefix
// ("" or ending in "/").
func ParseS3URL(rawURL string) (bucket, prefix string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("s3 url %q: want s3://bucket[/prefix]", rawURL)
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if !scratch.ValidKey(prefix) {
			return "", "", fmt.Errorf("s3 url %q: prefix is not a clean key", rawURL)
		}
		prefix += "/"
	}
	return u.Host, prefix, nil
}

// S3 is a Store on an S3 bucket under a key prefix: the store for
// functions on several pods (a directory works on one host only). Puts and
// gets stream; Create is a conditional put (If-None-Match: *), which S3,
// MinIO and the in-process test server all honour. Objects under jobs/ are
// scratch: expire them with a bucket lifecycle rule (docs/content.md).
type S3 struct {
	client   *s3.Client
	uploader *transfermanager.Client
	bucket   string
	prefix   string
}

// NewS3 returns a store on bucket under prefix ("" or ending in "/").
func NewS3(client *s3.Client, bucket, prefix string) (*S3, error) {
	if client == nil || bucket == "" {
		return nil, errors.New("s3 store: a client and a bucket are required")
	}
	if prefix != "" && (!strings.HasSuffix(prefix, "/") || !scratch.ValidKey(strings.TrimSuffix(prefix, "/"))) {
		return nil, fmt.Errorf("s3 store: prefix %q must be a clean key ending in /", prefix)
	}
	return &S3{client: client, uploader: transfermanager.New(client), bucket: bucket, prefix: prefix}, nil
}

func (s *S3) key(key string) (string, error) {
	if !scratch.ValidKey(key) {
		return "", fmt.Errorf("blob key %q is not a clean relative key", key)
	}
	return s.prefix + key, nil
}

// Put streams r to key, replacing any previous object. Bodies of unknown
// length are sent in parts, so memory stays bounded.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if _, err := s.uploader.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: &s.bucket, Key: &k, Body: r}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Create stores r under key only if key is absent, else returns
// scratch.ErrExists. S3 decides atomically: of concurrent creators exactly one
// succeeds, the others get 412 Precondition Failed.
func (s *S3) Create(ctx context.Context, key string, r io.Reader) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	// A conditional write racing another one may get 409
	// ConditionalRequestConflict; retrying then yields 412 or success. The
	// body must be replayable for that, so it is read into memory: creates
	// are small (locks, outcomes, manifests).
	body, err := io.ReadAll(io.LimitReader(r, maxCreateBytes+1))
	if err != nil {
		return fmt.Errorf("create %s: read body: %w", key, err)
	}
	if len(body) > maxCreateBytes {
		return fmt.Errorf("create %s: body over %d bytes", key, maxCreateBytes)
	}
	for attempt := 1; ; attempt++ {
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &k, Body: bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))), IfNoneMatch: aws.String("*"),
		})
		switch {
		case err == nil:
			return nil
		case httpStatus(err) == http.StatusPreconditionFailed:
			return fmt.Errorf("create %s: %w", key, scratch.ErrExists)
		case httpStatus(err) == http.StatusConflict && attempt < 5:
			select {
			case <-ctx.Done():
				return fmt.Errorf("create %s: %w", key, ctx.Err())
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		default:
			return fmt.Errorf("create %s: %w", key, err)
		}
	}
}

// maxCreateBytes bounds a conditional create's body.
const maxCreateBytes = 8 << 20

// Get opens key's object; the caller must Close it. The body streams.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) || httpStatus(err) == http.StatusNotFound {
			return nil, fmt.Errorf("get %s: %w", key, scratch.ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return out.Body, nil
}

// Exists reports whether key exists.
func (s *S3) Exists(ctx context.Context, key string) (bool, error) {
	k, err := s.key(key)
	if err != nil {
		return false, err
	}
	_, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &k})
	if err == nil {
		return true, nil
	}
	var nf *types.NotFound
	if errors.As(err, &nf) || httpStatus(err) == http.StatusNotFound {
		return false, nil
	}
	return false, fmt.Errorf("head %s: %w", key, err)
}

// List returns the keys that start with prefix, sorted.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	full := s.prefix + prefix
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &full})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			if o.Key != nil {
				keys = append(keys, strings.TrimPrefix(*o.Key, s.prefix))
			}
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// httpStatus returns the HTTP status of an S3 API error, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed":
			return http.StatusPreconditionFailed
		case "ConditionalRequestConflict":
			return http.StatusConflict
		case "NoSuchKey", "NotFound":
			return http.StatusNotFound
		}
	}
	return 0
}
