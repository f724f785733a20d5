// Package simplecontent talks to simple-content, where ocrflow's sources
// live and its results go: Client is the /api/v5 HTTP API (the one the
// production image, cmd/files, serves), Store is the pipeline's content
// store on top of it, and package embedded runs the real v5 handlers
// in-process for `ocrflow run` and the tests.
//
// The v5 API's sharp edges shape this package (see docs/content.md): errors
// are text/plain bodies; a derived content's status can be set only when it
// is created (or moved to "uploaded" by /files/{id}/complete); metadata PUT
// replaces everything; derived lists expose neither variant nor type, so
// ocrflow finds its own derived contents by markers in their metadata.
package simplecontent

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ocrflow/ocrflow/shared/egress"
	"github.com/ocrflow/ocrflow/shared/failure"
)

// APIPrefix is appended to the configured base URL.
const APIPrefix = "/api/v5"

// Config configures a Client.
type Config struct {
	// BaseURL is the server's base URL, e.g. http://simple-content:4000.
	BaseURL string
	// APIKey is sent as the raw Authorization header (no "Bearer").
	APIKey string
	// Timeout bounds one attempt of one call (default 30s).
	Timeout time.Duration
	// Attempts is how often a call is tried when it fails transiently
	// (default 3). Only idempotent calls are repeated after the server may
	// have acted; a create is repeated only if the connection was refused.
	Attempts int
	// Backoff is the wait before the second attempt; it doubles per attempt
	// up to 5s, with jitter (default 200ms).
	Backoff time.Duration
	// HTTP is the client for API calls (default: a plain client that does
	// not follow redirects).
	HTTP *http.Client
	// Transfers is the client for presigned upload and download URLs
	// (default: egress policy allowing only BaseURL's host).
	Transfers *http.Client
}

func (c *Config) setDefaults() error {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 3
	}
	if c.Backoff == 0 {
		c.Backoff = 200 * time.Millisecond
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.Transfers == nil {
		p, err := egress.NewPolicy(egress.HostOf(c.BaseURL))
		if err != nil {
			return err
		}
		c.Transfers = p.Client()
	}
	return nil
}

// Validate checks the configuration.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "":
		return errors.New("SIMPLE_CONTENT_URL: required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("SIMPLE_CONTENT_URL: %q is not an http(s) base URL such as http://simple-content:4000", c.BaseURL)
	case strings.HasSuffix(strings.TrimRight(u.Path, "/"), APIPrefix):
		return fmt.Errorf("SIMPLE_CONTENT_URL: %q ends in %s; give the base URL, the client appends it", c.BaseURL, APIPrefix)
	case c.Timeout < 0, c.Attempts < 0, c.Backoff < 0:
		return errors.New("simple-content client: timeout, attempts and backoff must not be negative")
	}
	return nil
}

// Client calls simple-content's v5 API. Every error it returns is
// classified with package failure: 4xx answers are permanent (callers turn
// the ones caused by the job into validation errors), 5xx, 408, 429,
// timeouts and connection errors are transient. It is safe for concurrent
// use.
type Client struct {
	cfg  Config
	base string
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("simple-content client: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("simple-content client: %w", err)
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/") + APIPrefix}, nil
}

// APIError is a non-2xx answer. Message is the (text/plain) body.
type APIError struct {
	Method string
	// Path is the request path, without query (presigned URLs carry
	// signatures there).
	Path    string
	Status  int
	Message string
}

// Error returns "METHOD path: status body".
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// IsStatus reports whether err carries an APIError with the given status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// retryable reports whether an answer with this status may succeed later.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// classify marks an answer that retrying cannot change as permanent; any
// other error stays unclassified, which package failure treats as
// transient.
func classify(err error) error {
	var ae *APIError
	if errors.As(err, &ae) && !retryable(ae.Status) {
		return failure.As(failure.ErrPermanent, err)
	}
	return err
}

// call is one API request.
type call struct {
	method, path string
	body         any // JSON-encoded when non-nil
	out          any // JSON-decoded when non-nil
	// idempotent calls are retried after any transient failure; others
	// only when the connection was refused (the server saw nothing).
	idempotent bool
}

// do performs c with retries and returns a classified error.
func (cl *Client) do(ctx context.Context, c call) error {
	var payload []byte
	if c.body != nil {
		var err error
		if payload, err = json.Marshal(c.body); err != nil {
			return failure.As(failure.ErrPermanent, fmt.Errorf("encode %s %s: %w", c.method, c.path, err))
		}
	}
	return cl.retry(ctx, c.idempotent, func(ctx context.Context) error {
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, c.method, cl.base+c.path, body)
		if err != nil {
			return failure.As(failure.ErrPermanent, fmt.Errorf("%s %s: %w", c.method, c.path, err))
		}
		req.Header.Set("Authorization", cl.cfg.APIKey)
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := cl.cfg.HTTP.Do(req)
		if err != nil {
			return transportError(c.method, c.path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return classify(readError(c.method, c.path, resp))
		}
		if c.out == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			return nil
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(c.out); err != nil {
			return fmt.Errorf("decode %s %s: %w", c.method, c.path, err)
		}
		return nil
	})
}

// retry runs attempt up to cfg.Attempts times, each under cfg.Timeout,
// backing off between attempts. Only transient errors are retried, and for
// non-idempotent calls only errors where the request never reached the
// server.
func (cl *Client) retry(ctx context.Context, idempotent bool, attempt func(ctx context.Context) error) error {
	wait := cl.cfg.Backoff
	var err error
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, cl.cfg.Timeout)
		err = attempt(actx)
		cancel()
		if err == nil || !failure.Retryable(err) || n >= cl.cfg.Attempts || ctx.Err() != nil {
			break
		}
		if !idempotent && !refused(err) {
			break
		}
		jitter := time.Duration(rand.Int64N(int64(wait)/4 + 1))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (while backing off after: %w)", ctx.Err(), err)
		case <-time.After(wait + jitter):
		}
		wait = min(wait*2, 5*time.Second)
	}
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (timeout %s per attempt)", err, cl.cfg.Timeout)
	}
	return err
}

// refused reports whether err shows the connection was never made.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// transportError turns a client error into an error whose text has no
// presigned query string. Refused egress is permanent; everything else
// (timeouts, resets, refused connections) stays unclassified: transient.
func transportError(method, where string, err error) error {
	err = fmt.Errorf("%s %s: %w", method, where, unwrapURL(err))
	if errors.Is(err, egress.ErrRefused) {
		return failure.As(failure.ErrPermanent, err)
	}
	return err
}

// unwrapURL drops net/http's *url.Error wrapper (its text repeats the full
// URL) but keeps its cause.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// readError builds an APIError from a failed response, keeping at most
// 512 bytes of its body: text/plain from simple-content, XML from S3.
func readError(method, where string, resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(b))
	if strings.HasPrefix(msg, "<") {
		var s3err struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		if xml.Unmarshal(b, &s3err) == nil && s3err.Code != "" {
			msg = strings.TrimSpace(s3err.Code + ": " + s3err.Message)
		}
	}
	if len(msg) > 512 {
		msg = failure.Message(errors.New(msg), 512)
	}
	return &APIError{Method: method, Path: where, Status: resp.StatusCode, Message: msg}
}

// GetContent returns the content with id. A missing content is a 404
// APIError.
func (cl *Client) GetContent(ctx context.Context, id string) (Content, error) {
	var c Content
	err := cl.do(ctx, call{method: http.MethodGet, path: "/contents/" + url.PathEscape(id), out: &c, idempotent: true})
	return c, err
}

// GetFile returns the content with id and its presigned URLs.
func (cl *Client) GetFile(ctx context.Context, id string) (File, error) {
	var f File
	err := cl.do(ctx, call{method: http.MethodGet, path: "/files/" + url.PathEscape(id), out: &f, idempotent: true})
	return f, err
}

// CreateFile creates a content with one object and returns its presigned
// upload URL. Upload the bytes, then CompleteFile.
func (cl *Client) CreateFile(ctx context.Context, f NewFile) (CreatedFile, error) {
	var out CreatedFile
	err := cl.do(ctx, call{method: http.MethodPost, path: "/files", body: f, out: &out})
	return out, err
}

// CompleteFile marks an upload complete: the content's status becomes
// "uploaded" (from any status), which is what makes it downloadable.
func (cl *Client) CompleteFile(ctx context.Context, id string) error {
	return cl.do(ctx, call{method: http.MethodPost, path: "/files/" + url.PathEscape(id) + "/complete", idempotent: true})
}

// CreateDerived creates a derived content of parent. The parent must be
// "uploaded" or "processed" (else simple-content answers 500).
func (cl *Client) CreateDerived(ctx context.Context, parent string, d NewDerived) (Content, error) {
	var c Content
	err := cl.do(ctx, call{method: http.MethodPost, path: "/contents/" + url.PathEscape(parent) + "/derived", body: d, out: &c})
	return c, err
}

// ListDerived returns parent's direct derived contents, newest first.
func (cl *Client) ListDerived(ctx context.Context, parent string) ([]Content, error) {
	var out []Content
	err := cl.do(ctx, call{method: http.MethodGet, path: "/contents/" + url.PathEscape(parent) + "/derived", out: &out, idempotent: true})
	return out, err
}

// CreateObject creates an object for content id and returns it with its
// presigned upload URL. Every object v5 creates is version 1, so create one
// object per content.
func (cl *Client) CreateObject(ctx context.Context, id string, o NewObject) (Object, error) {
	var out Object
	err := cl.do(ctx, call{method: http.MethodPost, path: "/contents/" + url.PathEscape(id) + "/objects", body: o, out: &out})
	return out, err
}

// ListObjects returns every object of content id; none is not an error.
func (cl *Client) ListObjects(ctx context.Context, id string) ([]Object, error) {
	var out []Object
	err := cl.do(ctx, call{method: http.MethodGet, path: "/contents/" + url.PathEscape(id) + "/objects?latest=false", out: &out, idempotent: true})
	if IsStatus(err, http.StatusNotFound) {
		return nil, nil // v5 answers 404 when a content has no object
	}
	return out, err
}

// DeleteContent soft-deletes content id: it disappears from GET and from
// derived lists. simple-content refuses while the status is "processing".
func (cl *Client) DeleteContent(ctx context.Context, id string) error {
	return cl.do(ctx, call{method: http.MethodDelete, path: "/contents/" + url.PathEscape(id), idempotent: true})
}

// metadataJSON is the wire form of GET /contents/{id}/metadata.
type metadataJSON struct {
	ContentType string         `json:"content_type"`
	FileName    string         `json:"file_name"`
	FileSize    int64          `json:"file_size"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	CreatedBy   string         `json:"created_by"`
	Tags        []string       `json:"tags"`
	Metadata    map[string]any `json:"metadata"`
}

// copied are the keys simple-content copies from the known fields into the
// stored metadata map; they are not custom data.
var copied = []string{"mime_type", "file_name", "file_size", "title", "description", "created_by"}

// GetMetadata returns content id's metadata. A content without metadata
// is a 404 APIError.
func (cl *Client) GetMetadata(ctx context.Context, id string) (Metadata, error) {
	var m metadataJSON
	if err := cl.do(ctx, call{method: http.MethodGet, path: "/contents/" + url.PathEscape(id) + "/metadata", out: &m, idempotent: true}); err != nil {
		return Metadata{}, err
	}
	custom := map[string]any{}
	for k, v := range m.Metadata {
		custom[k] = v
	}
	for _, k := range copied {
		delete(custom, k)
	}
	return Metadata{
		ContentType: m.ContentType, FileName: m.FileName, FileSize: m.FileSize, Title: m.Title,
		Description: m.Description, CreatedBy: m.CreatedBy, Tags: m.Tags, Custom: custom,
	}, nil
}

// PutMetadata replaces content id's metadata with m.
func (cl *Client) PutMetadata(ctx context.Context, id string, m Metadata) error {
	body := map[string]any{}
	if m.Custom != nil {
		body["metadata"] = m.Custom
	}
	for k, v := range map[string]string{
		"content_type": m.ContentType, "file_name": m.FileName, "title": m.Title,
		"description": m.Description, "created_by": m.CreatedBy,
	} {
		if v != "" {
			body[k] = v
		}
	}
	if m.FileSize > 0 {
		body["file_size"] = m.FileSize
	}
	if len(m.Tags) > 0 {
		body["tags"] = m.Tags
	}
	return cl.do(ctx, call{method: http.MethodPut, path: "/contents/" + url.PathEscape(id) + "/metadata", body: body, idempotent: true})
}

// MergeMetadata reads content id's metadata, lets change modify it, and
// writes it back (a PUT erases omitted keys). A content without metadata
// starts from empty metadata.
func (cl *Client) MergeMetadata(ctx context.Context, id string, change func(*Metadata)) error {
	m, err := cl.GetMetadata(ctx, id)
	if err != nil && !IsStatus(err, http.StatusNotFound) {
		return err
	}
	if m.Custom == nil {
		m.Custom = map[string]any{}
	}
	change(&m)
	return cl.PutMetadata(ctx, id, m)
}

// Upload PUTs size bytes of body to a presigned upload URL with the given
// content type, streaming them. It is retried on transient failures (a
// PUT of the same bytes is idempotent; each attempt rereads body from 0).
func (cl *Client) Upload(ctx context.Context, uploadURL string, body io.ReaderAt, size int64, contentType string) error {
	u, err := url.Parse(uploadURL)
	if err != nil {
		return failure.Permanent("upload url from simple-content is malformed")
	}
	where := egress.Redact(u)
	return cl.retry(ctx, true, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, uploadURL, io.NewSectionReader(body, 0, size))
		if err != nil {
			return failure.As(failure.ErrPermanent, fmt.Errorf("PUT %s: %w", where, err))
		}
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := cl.cfg.Transfers.Do(req)
		if err != nil {
			return transportError(http.MethodPut, where, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return classify(readError(http.MethodPut, where, resp))
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	})
}

// UploadFile stores size bytes of body as a new content the way a
// platform does: create the file, PUT the bytes to its presigned URL,
// complete it. It returns the content id.
func (cl *Client) UploadFile(ctx context.Context, f NewFile, body io.ReaderAt, size int64) (string, error) {
	f.FileSize = size
	created, err := cl.CreateFile(ctx, f)
	if err != nil {
		return "", fmt.Errorf("create file %s: %w", f.FileName, err)
	}
	mime := f.MimeType
	if mime == "" {
		mime = "application/octet-stream"
	}
	if err := cl.Upload(ctx, created.UploadURL, body, size, mime); err != nil {
		return "", fmt.Errorf("upload %s: %w", f.FileName, err)
	}
	if err := cl.CompleteFile(ctx, created.ContentID); err != nil {
		return "", fmt.Errorf("complete %s: %w", f.FileName, err)
	}
	return created.ContentID, nil
}

// Download GETs a presigned download URL and returns the open response;
// the caller must close its body. The request is retried while no response
// arrived or the answer was transient; the body is not (a broken transfer
// is the caller's transient error). timeout bounds the whole transfer
// including the body (0 = only the caller's context).
func (cl *Client) Download(ctx context.Context, downloadURL string, timeout time.Duration) (*http.Response, error) {
	u, err := url.Parse(downloadURL)
	if err != nil {
		return nil, failure.Permanent("download url is malformed")
	}
	where := egress.Redact(u)
	var resp *http.Response
	err = cl.retry(ctx, true, func(context.Context) error {
		// Not the attempt context: the body outlives this function.
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			tctx, cancel = context.WithTimeout(ctx, timeout)
		}
		req, err := http.NewRequestWithContext(tctx, http.MethodGet, downloadURL, nil)
		if err != nil {
			cancel()
			return failure.As(failure.ErrPermanent, fmt.Errorf("GET %s: %w", where, err))
		}
		r, err := cl.cfg.Transfers.Do(req)
		if err != nil {
			cancel()
			return transportError(http.MethodGet, where, err)
		}
		if r.StatusCode != http.StatusOK {
			defer r.Body.Close()
			cancel()
			return classify(readError(http.MethodGet, where, r))
		}
		r.Body = cancelOnClose{r.Body, cancel}
		resp = r
		return nil
	})
	return resp, err
}

// cancelOnClose is a response body that cancels its request's context
// once closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// Close closes the body, then cancels the request's context.
func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// CloseIdleConnections closes the idle connections of the API and the
// transfer clients (at shutdown, so no keep-alive outlives the process's
// use of simple-content).
func (cl *Client) CloseIdleConnections() {
	cl.cfg.HTTP.CloseIdleConnections()
	cl.cfg.Transfers.CloseIdleConnections()
}
