package docscheck_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/docscheck"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/config"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// root is the repository root, seen from this package.
const root = "../.."

// TestDocs checks every shell block of README.md, docs/*.md and the
// READMEs of examples/: annotations and the paths blocks name always;
// with DOCS_CHECK=run (make docs-check) it also runs the runnable blocks,
// file by file, in a sandbox with bin/ocrflow built once.
func TestDocs(t *testing.T) {
	files, err := docscheck.Files(root)
	require.NoError(t, err)
	require.Contains(t, files, "README.md")
	type doc struct {
		file   string
		blocks []docscheck.Block
	}
	var docs []doc
	modes := map[docscheck.Mode]int{}
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		blocks, err := docscheck.Parse(f, src)
		assert.NoError(t, err)
		for _, b := range blocks {
			assert.NoError(t, docscheck.Check(root, b))
			modes[b.Annotation.Mode]++
		}
		docs = append(docs, doc{f, blocks})
	}
	t.Logf("%d files: %d blocks to run, %d background, %d covered, %d skipped",
		len(files), modes[docscheck.Run], modes[docscheck.Background], modes[docscheck.Covered], modes[docscheck.Skip])
	if t.Failed() {
		return
	}
	if os.Getenv("DOCS_CHECK") != "run" {
		t.Log("annotations and paths checked; `make docs-check` (DOCS_CHECK=run) also runs the blocks")
		return
	}

	abs, err := filepath.Abs(root)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(abs))
	sb, err := docscheck.NewSandbox(root, filepath.Join(os.TempDir(), "ocrflow-docs-check-"+hex.EncodeToString(sum[:4])))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, sb.Close()) })
	sb.Log = t.Logf
	for _, v := range config.Vars {
		sb.Unset = append(sb.Unset, v.Name)
	}
	require.NoError(t, sb.Build(t.Context(), "ocrflow", "./cmd/ocrflow"))
	ran := 0
	for _, d := range docs {
		t.Run(strings.ReplaceAll(d.file, "/", "_"), func(t *testing.T) {
			sb.Log = t.Logf
			res, err := sb.RunFile(t.Context(), d.blocks)
			ran += res.Ran + res.Background
			require.NoError(t, err)
		})
	}
	assert.Positive(t, ran, "no block ran: the check would pass whatever the docs say")
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		md      string
		want    []docscheck.Block
		wantErr string
	}{
		{
			name: "unannotated_block_runs",
			md:   "text\n\n```sh\necho hi\n```\n",
			want: []docscheck.Block{{File: "f.md", Line: 3, Lang: "sh", Text: "echo hi\n", Annotation: docscheck.Annotation{Mode: docscheck.Run}}},
		},
		{
			name: "annotations_of_every_mode",
			md: "<!-- docs-check: run timeout=3m -->\n```bash\nmake build\n```\n" +
				"<!-- docs-check: background ready=\"msg=serving\" -->\n\n```sh\nocrflow serve\n```\n" +
				"<!-- docs-check: covered by a_test.go:TestA, make test -->\n```shell\nmake test\n```\n" +
				"<!-- docs-check: skip — needs a Kubernetes cluster -->\n```sh\nkubectl get pods\n```\n",
			want: []docscheck.Block{
				{File: "f.md", Line: 2, Lang: "bash", Text: "make build\n", Annotation: docscheck.Annotation{Mode: docscheck.Run, Timeout: 3 * time.Minute}},
				{File: "f.md", Line: 7, Lang: "sh", Text: "ocrflow serve\n", Annotation: docscheck.Annotation{Mode: docscheck.Background, Ready: "msg=serving"}},
				{File: "f.md", Line: 11, Lang: "shell", Text: "make test\n", Annotation: docscheck.Annotation{Mode: docscheck.Covered, Refs: []string{"a_test.go:TestA", "make test"}}},
				{File: "f.md", Line: 15, Lang: "sh", Text: "kubectl get pods\n", Annotation: docscheck.Annotation{Mode: docscheck.Skip, Reason: "needs a Kubernetes cluster"}},
			},
		},
		{
			name: "indented_block_in_a_list_and_other_languages",
			md:   "1. Do:\n\n   ```sh\n   kubectl apply -k x\n     --dry-run\n   ```\n\n```json\n{}\n```\n````md\n```sh\nnot a block\n```\n````\n",
			want: []docscheck.Block{{File: "f.md", Line: 3, Lang: "sh", Text: "kubectl apply -k x\n  --dry-run\n", Annotation: docscheck.Annotation{Mode: docscheck.Run}}},
		},
		{name: "annotation_before_prose", md: "<!-- docs-check: skip — needs a GPU server -->\nprose\n```sh\nx\n```\n", wantErr: "f.md:1: annotation not followed by a shell block"},
		{name: "annotation_before_json", md: "<!-- docs-check: skip — needs a GPU server -->\n```json\n{}\n```\n", wantErr: `the next block is "json"`},
		{name: "annotation_at_the_end", md: "```sh\nx\n```\n<!-- docs-check: skip — needs a GPU server -->\n", wantErr: "f.md:4: annotation not followed"},
		{name: "skip_without_reason", md: "<!-- docs-check: skip -->\n```sh\nx\n```\n", wantErr: "give the reason"},
		{name: "covered_by_nothing", md: "<!-- docs-check: covered by -->\n```sh\nx\n```\n", wantErr: `write "covered by REF, REF"`},
		{name: "background_without_ready", md: "<!-- docs-check: background -->\n```sh\nx\n```\n", wantErr: "say when it is ready"},
		{name: "unknown_mode", md: "<!-- docs-check: maybe -->\n```sh\nx\n```\n", wantErr: `unknown mode "maybe"`},
		{name: "bad_timeout", md: "<!-- docs-check: run timeout=soon -->\n```sh\nx\n```\n", wantErr: `timeout "soon"`},
		{name: "ready_on_a_run_block", md: "<!-- docs-check: run ready=\"x\" -->\n```sh\nx\n```\n", wantErr: "ready= belongs to background blocks"},
		{name: "comment_on_two_lines", md: "<!-- docs-check: skip — a reason\nthat goes on -->\n```sh\nx\n```\n", wantErr: "malformed docs-check comment"},
		{name: "unclosed_fence", md: "```sh\nx\n", wantErr: "f.md:1: code fence is never closed"},
		{name: "empty_block", md: "```sh\n\n```\n", wantErr: "f.md:1: empty shell block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := docscheck.Parse("f.md", []byte(tc.md))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// repo makes a minimal repository: a Makefile, a test file and testdata.
func repo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Makefile":            "build:\n\tgo build ./...\n\n## test: all\ntest: deps\n",
		"pkg/a_test.go":       "package pkg\n\nfunc TestA(t *testing.T) {}\n\nfunc (s *suite) TestMethod() {}\n",
		"pkg/b.go":            "package pkg\n\nfunc Generic[T any]() {}\n",
		"testdata/sample.txt": "sample\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return dir
}

func TestCheck(t *testing.T) {
	dir := repo(t)
	covered := func(refs ...string) docscheck.Block {
		return docscheck.Block{File: "f.md", Line: 7, Text: "x\n", Annotation: docscheck.Annotation{Mode: docscheck.Covered, Refs: refs}}
	}
	run := func(text string) docscheck.Block {
		return docscheck.Block{File: "f.md", Line: 9, Text: text, Annotation: docscheck.Annotation{Mode: docscheck.Run}}
	}
	for _, tc := range []struct {
		name    string
		block   docscheck.Block
		wantErr string
	}{
		{name: "file_func_dir_and_target_resolve", block: covered("pkg/a_test.go", "pkg/a_test.go:TestA", "pkg:TestMethod", "pkg:Generic", "make test", "make build")},
		{name: "missing_file", block: covered("pkg/gone_test.go"), wantErr: "f.md:7: covered by pkg/gone_test.go: pkg/gone_test.go does not exist"},
		{name: "missing_func", block: covered("pkg/a_test.go:TestGone"), wantErr: "no func TestGone in pkg/a_test.go"},
		{name: "missing_target", block: covered("make lint"), wantErr: `the Makefile has no target "lint"`},
		{name: "prose_instead_of_a_reference", block: covered("the tests"), wantErr: "not a reference"},
		{name: "paths_that_exist", block: run("go test ./pkg/... ./pkg/\ncat testdata/sample.txt # and testdata/gone.txt in a comment\nbin/ocrflow --out out x=y/z 'ocr.job.>' https://example.com/pkg/x\n")},
		{name: "path_that_does_not_exist", block: run("go test -bench . ./pkg/gone/\n"), wantErr: "f.md:9: the block names pkg/gone, which does not exist"},
		{name: "flag_value_path", block: run("ocrflow submit --file=testdata/gone.pdf\n"), wantErr: "names testdata/gone.pdf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := docscheck.Check(dir, tc.block)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			assert.NoError(t, err)
		})
	}
}

func TestSandbox_RunFile(t *testing.T) {
	blocks := func(md string) []docscheck.Block {
		b, err := docscheck.Parse("f.md", []byte(md))
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name    string
		md      string
		ran     int
		wantErr string
	}{
		{
			name: "blocks_share_the_sandbox_and_see_the_repository",
			md: "```sh\ncat testdata/sample.txt > copy.txt\ntest \"$(cat Makefile | head -1)\" = build:\n```\n" +
				"```sh\ngrep -q sample copy.txt\ntest -z \"${DOCS_CHECK_SECRET:-}\"\ncase \"$NATS_LISTEN\" in 127.0.0.1:*) ;; *) exit 1;; esac\n```\n",
			ran: 2,
		},
		{name: "failing_block", md: "```sh\necho before\nfalse\necho after\n```\n", wantErr: "f.md:1: exit: exit status 1"},
		{name: "failure_in_a_pipeline", md: "```sh\nfalse | cat\n```\n", wantErr: "exit status 1"},
		{name: "timeout", md: "<!-- docs-check: run timeout=300ms -->\n```sh\nsleep 30\n```\n", wantErr: "timed out after 300ms"},
		{name: "skipped_and_covered_blocks_do_not_run", md: "<!-- docs-check: skip — needs a GPU server -->\n```sh\nexit 1\n```\n<!-- docs-check: covered by Makefile -->\n```sh\nexit 1\n```\n"},
		{
			name: "background_runs_until_the_file_ends",
			md: "<!-- docs-check: background ready=\"listening\" -->\n```sh\necho listening\necho started > bg.txt\nexec sleep 60\n```\n" +
				"```sh\ngrep -q started bg.txt\n```\n",
			ran: 2,
		},
		{
			name:    "background_that_exits_early",
			md:      "<!-- docs-check: background ready=\"listening\" -->\n```sh\necho listening\n```\n```sh\ntrue\n```\n",
			wantErr: "background block exited before the end of the file",
		},
		{
			name:    "background_that_never_gets_ready",
			md:      "<!-- docs-check: background ready=\"listening\" timeout=300ms -->\n```sh\nexec sleep 60\n```\n",
			wantErr: `did not print "listening" within 300ms`,
		},
		{
			name:    "background_that_fails_at_start",
			md:      "<!-- docs-check: background ready=\"listening\" -->\n```sh\necho nope >&2\nexit 3\n```\n",
			wantErr: "exited before it was ready (exit status 3)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCS_CHECK_SECRET", "must not reach the blocks")
			sb, err := docscheck.NewSandbox(repo(t), filepath.Join(t.TempDir(), "sandbox"))
			require.NoError(t, err)
			defer func() { assert.NoError(t, sb.Close()) }()
			sb.Unset = []string{"DOCS_CHECK_SECRET"}
			res, err := sb.RunFile(t.Context(), blocks(tc.md))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.ran, res.Ran+res.Background)
		})
	}
}

func TestNewSandbox_is_exclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sandbox")
	first, err := docscheck.NewSandbox(repo(t), dir)
	require.NoError(t, err)
	_, err = docscheck.NewSandbox(repo(t), dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "in use by another docs check")
	require.NoError(t, first.Close())
	again, err := docscheck.NewSandbox(repo(t), dir)
	require.NoError(t, err, "Close releases the sandbox")
	assert.NoError(t, again.Close())
}

// TestSandbox_RunFile_stop_waits_for_what_the_block_started: SIGTERM goes
// to the whole process group, and the check waits until every process
// holding the block's output has exited — here a subshell that takes its
// time to shut down, as `ocrflow serve` finishing in-flight work does.
func TestSandbox_RunFile_stop_waits_for_what_the_block_started(t *testing.T) {
	sb, err := docscheck.NewSandbox(repo(t), filepath.Join(t.TempDir(), "sandbox"))
	require.NoError(t, err)
	defer func() { assert.NoError(t, sb.Close()) }()
	blocks, err := docscheck.Parse("f.md", []byte("<!-- docs-check: background ready=\"listening\" -->\n```sh\n"+
		"( trap 'echo stopped > stopped.txt; exit 0' TERM; echo listening; while :; do sleep 0.1; done )\n```\n"))
	require.NoError(t, err)
	res, err := sb.RunFile(t.Context(), blocks)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Background)
	got, err := os.ReadFile(filepath.Join(sb.Dir(), "stopped.txt"))
	require.NoError(t, err, "RunFile returned before the block's subshell had shut down")
	assert.Equal(t, "stopped\n", string(got))
}
