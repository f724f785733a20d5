package simplecontent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
)

// DerivationType is the derivation type (and, in v5, the variant) of
// ocrflow's markdown results and of its failure traces. Each output has
// its own (content.Variant: ocr_markdown, ocr_json, ocr_pdf); all fit
// simple-content's 32 characters.
const DerivationType = "ocr_markdown"

// MarkdownType is the MIME type of the stored markdown.
const MarkdownType = "text/markdown"

// variants are the derivation types of ocrflow's derived contents.
var variants = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range job.Outputs {
		m[content.Variant(f)] = true
	}
	return m
}()

// Metadata keys ocrflow writes on its derived contents. v5 cannot list
// derived contents by type, so these markers are how ocrflow recognises its
// own, the job that made each, and how far that job got.
const (
	// MetaGenerator is "ocrflow" on every derived content ocrflow creates.
	MetaGenerator = "generator"
	// MetaVariant is the output's variant (content.Variant: ocr_markdown,
	// ocr_json, ocr_pdf); DerivationType on a failure trace.
	MetaVariant = "variant"
	// MetaFormat is the output's format (markdown, json, pdf).
	MetaFormat = "format"
	// MetaOutputs lists the outputs the job asked for; MetaUnavailable
	// maps those it could not make for this source to the reason.
	MetaOutputs     = "outputs"
	MetaUnavailable = "unavailable_outputs"
	// MetaJobID is the id of the job that created the derived content.
	MetaJobID = "job_id"
	// MetaIdempotencyKey is content.IdempotencyKey of the result.
	MetaIdempotencyKey = "idempotency_key"
	// MetaState is StateProcessing while the result is written,
	// StateCompleted once its bytes and metadata are in place (the commit
	// point: v5 cannot set a derived content "processed"), or StateFailed
	// on a failure trace.
	MetaState = "state"
	// MetaSHA256 is the hex SHA-256 of the stored bytes.
	MetaSHA256 = "sha256"
	// MetaSupersededBy names the result that replaced a superseded one.
	MetaSupersededBy = "superseded_by"
	// MetaErrorType and MetaErrorMessage describe a failure trace.
	MetaErrorType    = "error_type"
	MetaErrorMessage = "error_message"
)

// States of a derived content (MetaState).
const (
	StateProcessing = "processing"
	StateCompleted  = "completed"
	StateFailed     = "failed"
	// StateSuperseded marks a completed result a later one with the same
	// idempotency key replaced (a forced re-run, a replay); it is no
	// longer reused.
	StateSuperseded = "superseded"
)

// Generator is the value of MetaGenerator.
const Generator = "ocrflow"

// StoreConfig configures a Store.
type StoreConfig struct {
	// Client talks to simple-content (required). Its Transfers client
	// carries the source download policy (SOURCE_ALLOWED_HOSTS).
	Client *Client
	// S3 presigns s3://bucket/key sources; nil refuses them.
	S3 *s3.PresignClient
	// DownloadTimeout bounds one source download, unless the caller's
	// context ends sooner (default 10m).
	DownloadTimeout time.Duration
	// PresignExpiry is the lifetime of presigned s3:// source URLs
	// (default 15m).
	PresignExpiry time.Duration
	// Log receives notes on skipped failure traces and abandoned writes.
	Log *slog.Logger
}

// Store is the pipeline's content store on simple-content: sources are
// contents (fetched through their download URL, the job's presigned URL,
// or an s3:// location), results are derived contents — one per output,
// of type ocr_markdown, ocr_json or ocr_pdf. It implements
// convert.Fetcher, finalize.Storer, content.OutputStorer, content.Reuser
// and content.FailureRecorder.
type Store struct {
	api *Client
	cfg StoreConfig
	log *slog.Logger
}

// Interface guards.
var (
	_ content.Reuser          = (*Store)(nil)
	_ content.FailureRecorder = (*Store)(nil)
	_ content.OutputStorer    = (*Store)(nil)
)

// NewStore returns a store for cfg.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("simple-content store: a client is required")
	}
	if cfg.DownloadTimeout == 0 {
		cfg.DownloadTimeout = 10 * time.Minute
	}
	if cfg.PresignExpiry == 0 {
		cfg.PresignExpiry = 15 * time.Minute
	}
	if cfg.DownloadTimeout < 0 || cfg.PresignExpiry < 0 {
		return nil, errors.New("simple-content store: timeouts must not be negative")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{api: cfg.Client, cfg: cfg, log: log}, nil
}

// Client returns the store's API client.
func (s *Store) Client() *Client { return s.api }

// Close drops the store's idle connections. The store stays usable.
func (s *Store) Close() error {
	s.api.CloseIdleConnections()
	return nil
}

// source reads the job's content and checks that the job may use it.
func (s *Store) source(ctx context.Context, j job.Job) (Content, error) {
	if j.ContentID == "" {
		return Content{}, failure.Validation("job %s names no content id: with simple-content, results are derived contents of the job's source content", j.ID)
	}
	c, err := s.api.GetContent(ctx, j.ContentID)
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusBadRequest) {
		return Content{}, failure.Validation("source content %s does not exist in simple-content (%v)", j.ContentID, ae)
	}
	if err != nil {
		return Content{}, fmt.Errorf("source content %s: %w", j.ContentID, err)
	}
	// simple-content does not enforce tenancy; ocrflow does, before
	// reading anything. The message does not name the actual owner.
	if j.TenantID != "" && !strings.EqualFold(j.TenantID, c.TenantID) {
		return Content{}, failure.Permanent("job %s: tenant %s does not own content %s", j.ID, j.TenantID, j.ContentID)
	}
	if j.OwnerID != "" && !strings.EqualFold(j.OwnerID, c.OwnerID) {
		return Content{}, failure.Permanent("job %s: owner %s does not own content %s", j.ID, j.OwnerID, j.ContentID)
	}
	return c, nil
}

// Fetch downloads the job's source to dst. It reads the content record
// first (tenant and owner must match the job's; the status must be
// "uploaded"), then streams the bytes from the job's presigned_get URL, an
// s3:// location, or the content's download URL — in that order — through
// the egress policy, refusing more than maxBytes (0 = no limit) and
// checking the job's size and sha256 when it carries them. dst is removed
// on any failure.
func (s *Store) Fetch(ctx context.Context, j job.Job, dst string, maxBytes int64) (content.Source, error) {
	c, err := s.source(ctx, j)
	if err != nil {
		return content.Source{}, err
	}
	if c.Status != StatusUploaded {
		return content.Source{}, failure.Validation("source content %s is %q, not %q: upload and complete it first", c.ID, c.Status, StatusUploaded)
	}
	for _, declared := range []int64{c.FileSize, j.Size} {
		if maxBytes > 0 && declared > maxBytes {
			return content.Source{}, failure.Validation("source is %d bytes, more than MAX_SOURCE_BYTES=%d", declared, maxBytes)
		}
	}
	src, via, err := s.sourceURL(ctx, j, c)
	if err != nil {
		return content.Source{}, err
	}
	resp, err := s.api.Download(ctx, src, s.cfg.DownloadTimeout)
	if err != nil {
		return content.Source{}, fmt.Errorf("download source (%s): %w", via, err)
	}
	defer resp.Body.Close()
	if maxBytes > 0 && resp.ContentLength > maxBytes {
		return content.Source{}, failure.Validation("source is %d bytes, more than MAX_SOURCE_BYTES=%d", resp.ContentLength, maxBytes)
	}
	h := sha256.New()
	n, err := content.CopyLimited(ctx, dst, io.TeeReader(resp.Body, h), maxBytes)
	if err != nil {
		return content.Source{}, fmt.Errorf("download source (%s): %w", via, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		os.Remove(dst)
		return content.Source{}, failure.Transient("download source (%s): got %d of %d bytes", via, n, resp.ContentLength)
	}
	if j.Size > 0 && n != j.Size {
		os.Remove(dst)
		return content.Source{}, failure.Validation("source is %d bytes, but the job says %d", n, j.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); j.SHA256 != "" && !strings.EqualFold(sum, j.SHA256) {
		os.Remove(dst)
		return content.Source{}, failure.Validation("source sha256 %s does not match the job's %s", sum, j.SHA256)
	}
	name := firstOf(c.FileName, j.Name, c.ID)
	return content.Source{Name: path.Base(name), MIME: firstOf(c.MimeType, j.MIME), Size: n}, nil
}

// sourceURL picks where the bytes come from and names it for messages.
func (s *Store) sourceURL(ctx context.Context, j job.Job, c Content) (u, via string, err error) {
	switch {
	case j.PresignedGet != "":
		return j.PresignedGet, "presigned_get", nil
	case strings.HasPrefix(j.Location, "s3://"):
		u, err := s.presign(ctx, j.Location)
		return u, j.Location, err
	}
	f, err := s.api.GetFile(ctx, c.ID)
	if err != nil {
		return "", "", fmt.Errorf("source content %s: %w", c.ID, err)
	}
	if f.DownloadURL == "" {
		return "", "", failure.Validation("source content %s has no download url (status %q)", c.ID, f.Status)
	}
	return f.DownloadURL, "download_url of " + c.ID, nil
}

// presign turns s3://bucket/key into a presigned GET URL.
func (s *Store) presign(ctx context.Context, loc string) (string, error) {
	if s.cfg.S3 == nil {
		return "", failure.Permanent("source %s: s3:// sources need S3 access (set S3_ENDPOINT or AWS credentials)", loc)
	}
	bucket, key, err := blob.ParseS3URL(loc)
	if err != nil || key == "" {
		return "", failure.Validation("source %s is not s3://bucket/key", loc)
	}
	key = strings.TrimSuffix(key, "/")
	req, err := s.cfg.S3.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key},
		s3.WithPresignExpires(s.cfg.PresignExpiry))
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", loc, err)
	}
	return req.URL, nil
}

// ours is one of ocrflow's derived contents of a parent.
type ours struct {
	Content
	meta Metadata
}

func (o ours) str(k string) string {
	v, _ := o.meta.Custom[k].(string)
	return v
}

// derived returns the parent's derived contents that ocrflow made and
// keep says to, newest first.
func (s *Store) derived(ctx context.Context, parent string, keep func(ours) bool) ([]ours, error) {
	list, err := s.api.ListDerived(ctx, parent)
	if err != nil {
		return nil, fmt.Errorf("list derived of %s: %w", parent, err)
	}
	var out []ours
	for _, c := range list {
		m, err := s.api.GetMetadata(ctx, c.ID)
		if IsStatus(err, http.StatusNotFound) {
			continue // not ours: ocrflow always writes metadata
		}
		if err != nil {
			return nil, fmt.Errorf("metadata of derived %s: %w", c.ID, err)
		}
		o := ours{Content: c, meta: m}
		if o.str(MetaGenerator) == Generator && variants[o.str(MetaVariant)] && keep(o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// Existing returns the newest finished result of the job's source whose
// idempotency key is key, with every output the job asks for
// (j.OutputsOr of the markdown alone): the newest completed derived
// content of each output's variant. An output missing because the job
// that made the others recorded it unavailable for this source (a
// searchable PDF of a DOCX) is not waited for. The job's tenant and owner
// are checked first.
func (s *Store) Existing(ctx context.Context, j job.Job, key string) (content.Derived, bool, error) {
	c, err := s.source(ctx, j)
	if err != nil {
		return content.Derived{}, false, err
	}
	found, err := s.derived(ctx, c.ID, func(o ours) bool {
		return o.str(MetaState) == StateCompleted && o.Status == StatusUploaded && o.str(MetaIdempotencyKey) == key
	})
	if err != nil || len(found) == 0 {
		return content.Derived{}, false, err
	}
	newest := map[string]ours{} // by variant; found is newest first
	for _, o := range found {
		if _, ok := newest[o.str(MetaVariant)]; !ok {
			newest[o.str(MetaVariant)] = o
		}
	}
	d := content.Derived{Refs: map[string]string{}, PagesByRoute: map[string]int{}}
	var first *ours
	for _, f := range j.OutputsOr([]string{job.OutputMarkdown}) {
		o, ok := newest[content.Variant(f)]
		if !ok {
			if unavailable(newest, f) {
				continue
			}
			return content.Derived{}, false, nil
		}
		d.Refs[f] = o.ID
		if first == nil {
			first = &o
		}
	}
	if first == nil {
		return content.Derived{}, false, nil
	}
	d.Ref = first.ID
	if n, ok := first.meta.Custom["page_count"].(float64); ok {
		d.PageCount = int(n)
	}
	if m, ok := first.meta.Custom["pages_by_route"].(map[string]any); ok {
		for k, v := range m {
			if n, ok := v.(float64); ok {
				d.PagesByRoute[k] = int(n)
			}
		}
	}
	return d, true, nil
}

// unavailable reports whether one of the results found recorded output
// format as unavailable for the source.
func unavailable(found map[string]ours, format string) bool {
	for _, o := range found {
		if m, ok := o.meta.Custom[MetaUnavailable].(map[string]any); ok {
			if _, ok := m[format]; ok {
				return true
			}
		}
	}
	return false
}

// Store stores the result's outputs (StoreOutputs) and returns the
// markdown's derived content id, or the first output's.
func (s *Store) Store(ctx context.Context, r content.Result) (string, error) {
	st, err := s.StoreOutputs(ctx, r)
	return st.Ref, err
}

// StoreOutputs writes each output of the result (content.Result.Files) as
// a derived content of its source — variant ocr_markdown, ocr_json or
// ocr_pdf, all with the job's idempotency key and the result's metadata —
// and returns their ids. The steps are v5's: create the derived content
// (status processing, marked with the job id), create its object, PUT the
// bytes to the presigned URL, complete (→ uploaded), then merge the
// result's metadata and mark it completed; then every older completed
// result of the same key and variant is superseded.
//
// StoreOutputs is idempotent per job and output: a retry finds the derived
// content an earlier attempt of the same job started and finishes it — or,
// when that attempt's object cannot be confirmed to hold these bytes,
// deletes it and starts over — so a job leaves exactly one derived content
// per output however often it is retried.
func (s *Store) StoreOutputs(ctx context.Context, r content.Result) (content.Stored, error) {
	if r.ContentID == "" {
		return content.Stored{}, failure.Permanent("job %s has no source content to derive from", r.JobID)
	}
	parent, err := s.api.GetContent(ctx, r.ContentID)
	if IsStatus(err, http.StatusNotFound) {
		return content.Stored{}, failure.Permanent("source content %s is gone", r.ContentID)
	}
	if err != nil {
		return content.Stored{}, fmt.Errorf("source content %s: %w", r.ContentID, err)
	}
	files := r.Files()
	formats := make([]string, len(files))
	for i, o := range files {
		formats[i] = o.Format
	}
	st := content.Stored{Refs: map[string]string{}}
	for _, o := range files {
		id, err := s.storeOutput(ctx, parent, r, o, formats)
		if err != nil {
			return content.Stored{}, err
		}
		st.Refs[o.Format] = id
		if st.Ref == "" || o.Format == job.OutputMarkdown {
			st.Ref = id
		}
	}
	return st, nil
}

// storeOutput stores one output of r as a derived content of parent.
func (s *Store) storeOutput(ctx context.Context, parent Content, r content.Result, o content.Output, formats []string) (string, error) {
	variant := content.Variant(o.Format)
	if o.SHA256 == "" {
		var err error
		if o.Size, o.SHA256, err = digestOf(ctx, o); err != nil {
			return "", err
		}
	}
	mine, err := s.derived(ctx, parent.ID, func(d ours) bool {
		return d.str(MetaJobID) == r.JobID && d.str(MetaState) != StateFailed && d.str(MetaVariant) == variant
	})
	if err != nil {
		return "", err
	}
	var resumed string
	for _, d := range mine {
		switch {
		case d.str(MetaState) == StateCompleted && d.Status == StatusUploaded:
			// An earlier attempt finished (its superseding may not have).
			return d.ID, s.supersede(ctx, parent.ID, r.IdempotencyKey, variant, d.ID)
		case d.str(MetaState) == StateSuperseded:
			return d.ID, nil // and a later result has replaced it since
		case resumed == "":
			ok, err := s.resume(ctx, d, r, o)
			if err != nil {
				return "", err
			}
			if ok {
				resumed = d.ID
			}
		default:
			if err := s.abandon(ctx, d.Content, "duplicate of "+resumed); err != nil {
				return "", err
			}
		}
	}
	id := resumed
	if id == "" {
		d, err := s.api.CreateDerived(ctx, parent.ID, NewDerived{
			DerivationType: variant, OwnerID: parent.OwnerID, TenantID: parent.TenantID, Status: StatusProcessing,
			Params: marker(r.JobID, r.IdempotencyKey, StateProcessing, variant),
		})
		if err != nil {
			return "", fmt.Errorf("create derived content (%s): %w", o.Format, err)
		}
		id = d.ID
		if err := s.upload(ctx, id, r, o); err != nil {
			return "", err
		}
	}
	err = s.api.MergeMetadata(ctx, id, func(m *Metadata) {
		m.ContentType, m.FileName, m.FileSize = content.MIME(o.Format), r.FileName(o.Format), o.Size
		for k, v := range r.Metadata {
			m.Custom[k] = v
		}
		for k, v := range marker(r.JobID, r.IdempotencyKey, StateCompleted, variant) {
			m.Custom[k] = v
		}
		m.Custom[MetaFormat] = o.Format
		m.Custom[MetaOutputs] = formats
		if len(r.Unavailable) > 0 {
			m.Custom[MetaUnavailable] = r.Unavailable
		}
		m.Custom[MetaSHA256] = o.SHA256
		m.Custom["completed_at"] = time.Now().UTC().Format(time.RFC3339)
	})
	if err != nil {
		return "", fmt.Errorf("derived content %s metadata: %w", id, err)
	}
	return id, s.supersede(ctx, parent.ID, r.IdempotencyKey, variant, id)
}

// digestOf reads an output once for its size and SHA-256.
func digestOf(ctx context.Context, o content.Output) (int64, string, error) {
	rc, err := o.Reader(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("read %s output: %w", o.Format, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return 0, "", fmt.Errorf("read %s output: %w", o.Format, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// supersede marks every other completed result of parent with the same
// idempotency key and variant superseded by id, so that exactly one result
// per (content, key, output) is current: a forced re-run's or a replay's
// replaces the one before it. Done after id is complete, so a reader never
// finds none.
func (s *Store) supersede(ctx context.Context, parent, key, variant, id string) error {
	if key == "" {
		return nil
	}
	current, err := s.derived(ctx, parent, func(o ours) bool {
		return o.str(MetaState) == StateCompleted && o.str(MetaIdempotencyKey) == key && o.str(MetaVariant) == variant
	})
	if err != nil {
		return err
	}
	i := slices.IndexFunc(current, func(o ours) bool { return o.ID == id })
	if i < 0 {
		return nil // superseded by a newer result already
	}
	mine := current[i]
	for _, o := range current {
		// Only results created before this one: of two results stored at
		// the same time, the newer stays current, whichever finishes last.
		if o.ID == id || !older(o.Content, mine.Content) {
			continue
		}
		err := s.api.MergeMetadata(ctx, o.ID, func(m *Metadata) {
			m.Custom[MetaState] = StateSuperseded
			m.Custom[MetaSupersededBy] = id
		})
		if err != nil {
			return fmt.Errorf("supersede derived content %s: %w", o.ID, err)
		}
		s.log.InfoContext(ctx, "result superseded", "parent", parent, "old", o.ID, "new", id)
	}
	return nil
}

// older reports whether a was created before b (by id when at the same
// instant), so that every result agrees which of two is the newer.
func older(a, b Content) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

// upload creates the derived content's object, PUTs the output's bytes
// and completes the content.
func (s *Store) upload(ctx context.Context, id string, r content.Result, out content.Output) error {
	mime := content.MIME(out.Format)
	o, err := s.api.CreateObject(ctx, id, NewObject{MimeType: mime, FileSize: out.Size, FileName: r.FileName(out.Format)})
	if err != nil {
		return fmt.Errorf("derived content %s object: %w", id, err)
	}
	body, done, err := readerAt(ctx, out)
	if err != nil {
		return err
	}
	defer done()
	if err := s.api.Upload(ctx, o.UploadURL, body, out.Size, mime); err != nil {
		return fmt.Errorf("upload derived content %s: %w", id, err)
	}
	if err := s.api.CompleteFile(ctx, id); err != nil {
		return fmt.Errorf("complete derived content %s: %w", id, err)
	}
	return nil
}

// resume finishes a derived content an earlier attempt of the same job
// left behind for output out. Without an object it uploads; with one,
// whose presigned URL is gone, it completes the content and checks that
// the stored bytes are this output's. ok is false when the content was
// abandoned instead.
func (s *Store) resume(ctx context.Context, o ours, r content.Result, out content.Output) (ok bool, err error) {
	objs, err := s.api.ListObjects(ctx, o.ID)
	if err != nil {
		return false, fmt.Errorf("objects of derived %s: %w", o.ID, err)
	}
	if len(objs) == 0 {
		s.log.Info("resuming derived content without object", "job", r.JobID, "derived", o.ID, "output", out.Format)
		return true, s.upload(ctx, o.ID, r, out)
	}
	if err := s.api.CompleteFile(ctx, o.ID); err != nil {
		return false, fmt.Errorf("complete derived content %s: %w", o.ID, err)
	}
	same, err := s.holds(ctx, o.ID, out.SHA256)
	if err != nil {
		return false, err
	}
	if same {
		s.log.Info("resuming derived content whose upload had arrived", "job", r.JobID, "derived", o.ID)
		return true, nil
	}
	return false, s.abandon(ctx, o.Content, "its upload did not arrive")
}

// holds reports whether derived content id's stored bytes hash to digest.
// A missing object (the upload never arrived) is false, not an error.
func (s *Store) holds(ctx context.Context, id, digest string) (bool, error) {
	f, err := s.api.GetFile(ctx, id)
	if err != nil {
		return false, fmt.Errorf("derived content %s: %w", id, err)
	}
	if f.DownloadURL == "" {
		return false, nil
	}
	resp, err := s.api.Download(ctx, f.DownloadURL, s.cfg.DownloadTimeout)
	if IsStatus(err, http.StatusNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check derived content %s: %w", id, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return false, fmt.Errorf("check derived content %s: %w", id, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == digest, nil
}

// abandon deletes a derived content ocrflow will not finish. v5 refuses to
// delete while the status is "processing", so it is completed first.
func (s *Store) abandon(ctx context.Context, c Content, why string) error {
	s.log.Warn("deleting unfinished derived content", "derived", c.ID, "parent", c.ParentID, "reason", why)
	if c.Status == StatusProcessing {
		if err := s.api.CompleteFile(ctx, c.ID); err != nil {
			return fmt.Errorf("abandon derived content %s: %w", c.ID, err)
		}
	}
	if err := s.api.DeleteContent(ctx, c.ID); err != nil {
		return fmt.Errorf("abandon derived content %s: %w", c.ID, err)
	}
	return nil
}

// RecordFailure leaves a derived content with status "failed" whose
// metadata carries the error type and message — v5 cannot move a derived
// content to failed later, so the trace is created failed. An unfinished
// result of the same job is deleted first. Nothing is written when the
// source does not exist, is not ready for derived contents, or belongs to
// another tenant or owner than the job says.
func (s *Store) RecordFailure(ctx context.Context, f content.Failure) error {
	if f.ContentID == "" || f.JobID == "" {
		return nil
	}
	j := job.Job{ID: f.JobID, ContentID: f.ContentID, TenantID: f.TenantID, OwnerID: f.OwnerID}
	parent, err := s.source(ctx, j)
	if err != nil {
		if failure.Retryable(err) {
			return err
		}
		s.log.Info("no failure trace for this job", "job", f.JobID, "reason", err)
		return nil
	}
	if parent.Status != StatusUploaded && parent.Status != StatusProcessed {
		s.log.Info("no failure trace: the source cannot have derived contents", "job", f.JobID, "status", parent.Status)
		return nil
	}
	mine, err := s.derived(ctx, parent.ID, func(o ours) bool { return o.str(MetaJobID) == f.JobID })
	if err != nil {
		return err
	}
	for _, o := range mine {
		if o.str(MetaState) == StateFailed {
			return nil // recorded by an earlier attempt
		}
		if o.str(MetaState) == StateProcessing {
			if err := s.abandon(ctx, o.Content, "the job failed"); err != nil {
				return err
			}
		}
	}
	params := marker(f.JobID, f.IdempotencyKey, StateFailed, DerivationType)
	params[MetaErrorType] = f.ErrorType
	params[MetaErrorMessage] = f.Message
	params["failed_at"] = time.Now().UTC().Format(time.RFC3339)
	if _, err := s.api.CreateDerived(ctx, parent.ID, NewDerived{
		DerivationType: DerivationType, OwnerID: parent.OwnerID, TenantID: parent.TenantID, Status: StatusFailed, Params: params,
	}); err != nil {
		return fmt.Errorf("record failure of job %s: %w", f.JobID, err)
	}
	return nil
}

// Download writes derived (or any) content id's bytes to w, for callers
// that hand results out (ocrflow run --out).
func (s *Store) Download(ctx context.Context, id string, w io.Writer) error {
	f, err := s.api.GetFile(ctx, id)
	if err != nil {
		return fmt.Errorf("content %s: %w", id, err)
	}
	if f.DownloadURL == "" {
		return failure.Permanent("content %s (status %q) has no download url", id, f.Status)
	}
	resp, err := s.api.Download(ctx, f.DownloadURL, s.cfg.DownloadTimeout)
	if err != nil {
		return fmt.Errorf("download content %s: %w", id, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("download content %s: %w", id, err)
	}
	return nil
}

// marker is the metadata that marks a derived content as ocrflow's.
func marker(jobID, key, state, variant string) map[string]any {
	m := map[string]any{MetaGenerator: Generator, MetaVariant: variant, MetaJobID: jobID, MetaState: state}
	if key != "" {
		m[MetaIdempotencyKey] = key
	}
	return m
}

// readerAt returns the output's bytes as an io.ReaderAt for Upload (which
// re-reads them on a retry): the bytes themselves, the opened reader when
// it is one (a file), else a temporary copy. done releases it.
func readerAt(ctx context.Context, o content.Output) (io.ReaderAt, func(), error) {
	if o.Open == nil {
		return bytes.NewReader(o.Data), func() {}, nil
	}
	rc, err := o.Open(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s output: %w", o.Format, err)
	}
	if ra, ok := rc.(io.ReaderAt); ok {
		return ra, func() { _ = rc.Close() }, nil
	}
	defer rc.Close()
	tmp, err := os.CreateTemp("", "ocrflow-upload-*")
	if err != nil {
		return nil, nil, fmt.Errorf("spool %s output: %w", o.Format, err)
	}
	done := func() { _ = tmp.Close(); os.Remove(tmp.Name()) }
	if _, err := io.Copy(tmp, rc); err != nil {
		done()
		return nil, nil, fmt.Errorf("spool %s output: %w", o.Format, err)
	}
	return tmp, done, nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
