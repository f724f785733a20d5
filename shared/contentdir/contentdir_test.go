package contentdir_test

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
)

// fixture is a content root holding a copy of testdata/report.pdf, a
// subdirectory, and a symlink out of the root.
type fixture struct {
	root, outside, out string
	report             []byte
	dir                *contentdir.Store
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	report, err := os.ReadFile("../../testdata/report.pdf")
	require.NoError(t, err)
	base := t.TempDir()
	f := fixture{
		root:    filepath.Join(base, "root"),
		outside: filepath.Join(base, "outside"),
		out:     filepath.Join(base, "out"),
		report:  report,
	}
	for _, d := range []string{filepath.Join(f.root, "docs", "sub"), f.outside} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	write := func(p string, b []byte) {
		require.NoError(t, os.WriteFile(p, b, 0o600))
	}
	write(filepath.Join(f.root, "docs", "report.pdf"), report)
	write(filepath.Join(f.outside, "secret.pdf"), []byte("%PDF-1.4 secret"))
	require.NoError(t, os.Symlink(filepath.Join(f.outside, "secret.pdf"), filepath.Join(f.root, "escape.pdf")))
	require.NoError(t, os.Symlink(filepath.Join(f.root, "docs", "report.pdf"), filepath.Join(f.root, "inside-link.pdf")))
	f.dir, err = contentdir.New([]string{f.root}, f.out)
	require.NoError(t, err)
	return f
}

func TestStore_Fetch(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name     string
		job      func(f fixture) job.Job
		maxBytes int64
		wantErr  error
		wantMsg  string
		wantName string
	}{
		{
			name:     "relative_path_under_root",
			job:      func(fixture) job.Job { return job.Job{ID: "j1", Location: "docs/report.pdf"} },
			wantName: "report.pdf",
		},
		{
			name:     "content_id_as_path_when_no_location",
			job:      func(fixture) job.Job { return job.Job{ID: "j2", ContentID: "docs/report.pdf", Name: "Quarterly.pdf"} },
			wantName: "Quarterly.pdf",
		},
		{
			name: "file_url",
			job: func(f fixture) job.Job {
				u := url.URL{Scheme: "file", Path: filepath.Join(f.root, "docs", "report.pdf")}
				return job.Job{ID: "j3", Location: u.String()}
			},
			wantName: "report.pdf",
		},
		{
			name: "absolute_path_under_root",
			job: func(f fixture) job.Job {
				return job.Job{ID: "j4", Location: filepath.Join(f.root, "docs", "report.pdf")}
			},
			wantName: "report.pdf",
		},
		{
			name:     "symlink_inside_root",
			job:      func(fixture) job.Job { return job.Job{ID: "j5", Location: "inside-link.pdf"} },
			wantName: "report.pdf",
		},
		{
			name:     "exactly_max_bytes_is_allowed",
			job:      func(fixture) job.Job { return job.Job{ID: "j6", Location: "docs/report.pdf"} },
			maxBytes: -1, // replaced by len(report)
			wantName: "report.pdf",
		},
		{
			name:    "missing_file",
			job:     func(fixture) job.Job { return job.Job{ID: "j7", Location: "docs/absent.pdf"} },
			wantErr: failure.ErrValidation, wantMsg: "does not exist",
		},
		{
			name:    "no_reference",
			job:     func(fixture) job.Job { return job.Job{ID: "j8"} },
			wantErr: failure.ErrValidation, wantMsg: "names no file",
		},
		{
			name:    "symlink_pointing_outside_root",
			job:     func(fixture) job.Job { return job.Job{ID: "j9", Location: "escape.pdf"} },
			wantErr: failure.ErrPermanent, wantMsg: "outside the allowed content roots",
		},
		{
			name:    "dot_dot_escape",
			job:     func(fixture) job.Job { return job.Job{ID: "j10", Location: "../outside/secret.pdf"} },
			wantErr: failure.ErrPermanent, wantMsg: "outside",
		},
		{
			name:    "absolute_path_outside_root",
			job:     func(f fixture) job.Job { return job.Job{ID: "j11", Location: filepath.Join(f.outside, "secret.pdf")} },
			wantErr: failure.ErrPermanent, wantMsg: "outside",
		},
		{
			name:    "directory",
			job:     func(fixture) job.Job { return job.Job{ID: "j12", Location: "docs/sub"} },
			wantErr: failure.ErrValidation, wantMsg: "not a regular file",
		},
		{
			name:    "other_url_scheme",
			job:     func(fixture) job.Job { return job.Job{ID: "j13", Location: "s3://bucket/report.pdf"} },
			wantErr: failure.ErrValidation, wantMsg: "only file paths",
		},
		{
			name:     "over_max_bytes",
			job:      func(fixture) job.Job { return job.Job{ID: "j14", Location: "docs/report.pdf"} },
			maxBytes: 1024,
			wantErr:  failure.ErrValidation, wantMsg: "MAX_SOURCE_BYTES=1024",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "source")
			maxBytes := tc.maxBytes
			if maxBytes == -1 {
				maxBytes = int64(len(f.report))
			}
			src, err := f.dir.Fetch(context.Background(), tc.job(f), dst, maxBytes)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr, "Fetch")
				assert.ErrorContains(t, err, tc.wantMsg, "Fetch")
				_, serr := os.Stat(dst)
				assert.ErrorIs(t, serr, os.ErrNotExist, "dst left behind after a failed Fetch")
				return
			}
			require.NoError(t, err, "Fetch")
			got, err := os.ReadFile(dst)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(got, f.report), "dst holds %d bytes, not the source's %d", len(got), len(f.report))
			assert.Equal(t, int64(len(f.report)), src.Size, "Source size")
			assert.Equal(t, tc.wantName, src.Name, "Source name")
		})
	}
}

func TestNew(t *testing.T) {
	t.Run("no_roots", func(t *testing.T) {
		_, err := contentdir.New(nil, t.TempDir())
		assert.Error(t, err, "NewDir without roots succeeded")
	})
	t.Run("creates_the_output_dir", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "a", "b")
		d, err := contentdir.New([]string{t.TempDir()}, out)
		require.NoError(t, err)
		st, err := os.Stat(out)
		require.NoError(t, err, "output dir not created")
		assert.True(t, st.IsDir(), "output dir not created: %s is not a directory", out)
		assert.Equal(t, out, d.Out(), "Out")
	})
}

func TestStore_Store(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		res      content.Result
		wantFile string
	}{
		{"named_after_the_source", content.Result{JobID: "j1", SourceName: "report.pdf"}, "report.pdf.md"},
		{"directories_in_the_name_are_dropped", content.Result{JobID: "j2", SourceName: "../../etc/scan.png"}, "scan.png.md"},
		{"no_source_name_uses_the_job_id", content.Result{JobID: "j3"}, "j3.md"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := filepath.Join(f.out, tc.wantFile)
			for i := range 2 {
				md := []byte("# " + tc.name + " take " + strconv.Itoa(i) + "\n")
				tc.res.Markdown = md
				p, err := f.dir.Store(ctx, tc.res)
				require.NoError(t, err, "Store #%d", i+1)
				require.Equal(t, want, p, "Store #%d wrote to the wrong file", i+1)
				got, err := os.ReadFile(p)
				require.NoError(t, err)
				assert.Equal(t, string(md), string(got), "file contents after Store #%d", i+1)
			}
		})
	}
	t.Run("no_temp_files_left", func(t *testing.T) {
		entries, err := os.ReadDir(f.out)
		require.NoError(t, err)
		for _, e := range entries {
			assert.False(t, strings.HasPrefix(e.Name(), ".tmp-"), "temp file %s left in the output dir", e.Name())
		}
	})
	t.Run("cancelled_context_writes_nothing", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := f.dir.Store(cctx, content.Result{JobID: "j4", SourceName: "late.pdf", Markdown: []byte("x")})
		require.ErrorIs(t, err, context.Canceled, "Store")
		_, err = os.Stat(filepath.Join(f.out, "late.pdf.md"))
		assert.ErrorIs(t, err, os.ErrNotExist, "result written despite cancellation")
	})
}

func TestStore_StoreOutputs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pdf := []byte("%PDF-1.7 searchable")
	opened := 0
	pdfOut := content.Output{Format: job.OutputPDF, Size: int64(len(pdf)), Open: func(context.Context) (io.ReadCloser, error) {
		opened++
		return io.NopCloser(bytes.NewReader(pdf)), nil
	}}
	for _, tc := range []struct {
		name    string
		outputs []content.Output
		want    map[string]string // file name → contents
		wantRef string
	}{
		{"markdown_json_and_pdf", []content.Output{
			content.NewOutput(job.OutputMarkdown, []byte("# md")), content.NewOutput(job.OutputJSON, []byte(`{"a":1}`)), pdfOut,
		}, map[string]string{"scan.pdf.md": "# md", "scan.pdf.json": `{"a":1}`, "scan.pdf.ocr.pdf": string(pdf)}, "scan.pdf.md"},
		{"json_alone_is_the_reference", []content.Output{content.NewOutput(job.OutputJSON, []byte(`{"b":2}`))},
			map[string]string{"only.png.json": `{"b":2}`}, "only.png.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.TrimSuffix(tc.wantRef, filepath.Ext(tc.wantRef))
			st, err := f.dir.StoreOutputs(ctx, content.Result{JobID: "j", SourceName: name, Markdown: []byte("# md"), Outputs: tc.outputs})
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(f.out, tc.wantRef), st.Ref, "Ref")
			assert.Len(t, st.Refs, len(tc.want), "Refs = %v", st.Refs)
			for file, body := range tc.want {
				got, err := os.ReadFile(filepath.Join(f.out, file))
				require.NoError(t, err, "%s", file)
				assert.Equal(t, body, string(got), "%s", file)
			}
			for format, p := range st.Refs {
				assert.Equal(t, filepath.Join(f.out, name+content.Extension(format)), p, "Refs[%s]", format)
			}
			_, err = os.Stat(filepath.Join(f.out, name+".md"))
			assert.Equal(t, tc.want[name+".md"] != "", err == nil, "the markdown is written only when asked for (%v)", err)
		})
	}
	assert.Equal(t, 1, opened, "the PDF was read from its source once")
}
