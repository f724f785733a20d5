package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path"
	"strings"

	"github.com/ocrflow/ocrflow/shared/job"
)

// Output is one stored form of a result: the markdown, the JSON document
// or the searchable PDF. Each is its own file (contentdir) or derived
// content (simplecontent).
type Output struct {
	// Format is job.OutputMarkdown, job.OutputJSON or job.OutputPDF.
	Format string
	// Data holds the bytes of a small output; nil when Open reads them.
	Data []byte
	// Open reads the bytes of an output too big to hold (a PDF), each
	// call from the start; nil when Data holds them.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// Size is the length in bytes and SHA256 the hex digest of the bytes.
	Size   int64
	SHA256 string
}

// NewOutput returns the output of format held in data.
func NewOutput(format string, data []byte) Output {
	sum := sha256.Sum256(data)
	return Output{Format: format, Data: data, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

// Reader returns the output's bytes from the start.
func (o Output) Reader(ctx context.Context) (io.ReadCloser, error) {
	if o.Open != nil {
		return o.Open(ctx)
	}
	return io.NopCloser(bytes.NewReader(o.Data)), nil
}

// Variant is the derived-content variant (and derivation type) of an
// output in simple-content: ocr_markdown, ocr_json, ocr_pdf.
func Variant(format string) string { return "ocr_" + format }

// MIME is the media type of an output.
func MIME(format string) string {
	switch format {
	case job.OutputJSON:
		return "application/json"
	case job.OutputPDF:
		return "application/pdf"
	}
	return "text/markdown"
}

// Extension is what an output's file name ends with: .md, .json or
// .ocr.pdf (so the searchable PDF never takes the name of a source PDF
// stored beside it).
func Extension(format string) string {
	switch format {
	case job.OutputJSON:
		return ".json"
	case job.OutputPDF:
		return ".ocr.pdf"
	}
	return ".md"
}

// BaseName is the name a result's files are named after: the source's
// file name without directories, or the job id when it has none.
func BaseName(sourceName, jobID string) string {
	name := path.Base(strings.ReplaceAll(sourceName, "\\", "/"))
	if name == "" || name == "." || name == "/" {
		return jobID
	}
	return name
}

// FileName is an output's file name: <source name>.md, .json, .ocr.pdf.
func (r Result) FileName(format string) string {
	return BaseName(r.SourceName, r.JobID) + Extension(format)
}

// Files returns the outputs to store: Outputs, or the markdown alone for
// a result that lists none.
func (r Result) Files() []Output {
	if len(r.Outputs) > 0 {
		return r.Outputs
	}
	return []Output{NewOutput(job.OutputMarkdown, r.Markdown)}
}

// Stored says where a result's outputs went.
type Stored struct {
	// Ref is the markdown's reference, or the first output's when the
	// markdown was not stored (ocr.job.completed's derived_content_id).
	Ref string
	// Refs maps each stored output's format to its reference (a derived
	// content id, or a file path for the directory store).
	Refs map[string]string
}

// OutputStorer is an optional content-store capability: store every
// output of a result and say where each went. A store without it stores
// what Store does and reports one reference.
type OutputStorer interface {
	StoreOutputs(ctx context.Context, r Result) (Stored, error)
}
