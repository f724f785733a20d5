package catalogue_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events/internal/catalogue"
)

// source writes one Go file of package events into a new directory.
func source(t *testing.T, code string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "events.go"), []byte("package events\n\nimport \"strconv\"\n\nvar _ = strconv.Itoa\n\n"+code), 0o644))
	return dir
}

const good = `
// Event types.
const (
	// TypeThing says a thing happened.
	TypeThing = "x.thing"
	// TypeOther has no payload.
	TypeOther = "x.other"
)

// ExtJob carries the job id.
const ExtJob = "xjob"

// Kind is what a thing is.
type Kind string

// Kinds.
const (
	// KindBig is big.
	KindBig Kind = "big"
)

// Thing is the payload of x.thing.
type Thing struct {
	// JobID is the job.
	JobID string ` + "`json:\"job_id\"`" + `
	Kind  Kind   ` + "`json:\"kind,omitempty\"`" + `
	Parts []Part ` + "`json:\"parts\"`" + `
	hidden int
}

// Part is a part of a thing.
type Part struct {
	// N counts.
	N int ` + "`json:\"n\"`" + `
}

// ThingID is the id of job's n-th thing.
func ThingID(job string, n int) string { return job + "-t" + strconv.Itoa(n) }
`

func TestGenerate_renders_what_the_code_says(t *testing.T) {
	triggers := []eventing.Trigger{{Name: "t-thing", Exact: map[string]string{"type": "x.thing"}, Subscriber: "ocrflow-convert"}}
	out, err := catalogue.Generate(source(t, good), triggers)
	require.NoError(t, err)
	for _, want := range []string{
		"| `x.thing` | `TypeThing` | `<job>-t<n>` | [Thing](#thing) | `t-thing` → convert | TypeThing says a thing happened. |",
		"| `x.other` | `TypeOther` | chosen by the producer | — | — (for the platform) | TypeOther has no payload. |",
		"| `xjob` | `ExtJob` | ExtJob carries the job id. |",
		"| `job_id` | `string` |  | JobID is the job. |",
		"| `kind` | `Kind` | yes |  |",
		"| `parts` | `[]Part` |  |  |",
		"#### Part\n\nPart is a part of a thing.",
		"| `n` | `int` |  | N counts. |",
		"- `big` (`KindBig`): KindBig is big.",
	} {
		assert.Contains(t, string(out), want)
	}
	assert.NotContains(t, string(out), "hidden", "unexported fields are not part of the contract")
}

func TestGenerate_refuses_what_breaks_the_conventions(t *testing.T) {
	for _, tc := range []struct {
		name string
		code string
		want string
	}{
		{
			name: "id_helper_computes_its_id",
			code: "// TypeA is a.\nconst TypeA = \"a\"\n\n// AID is a's id.\nfunc AID(job string) string { return strconv.Quote(job) }\n",
			want: "id helper AID: call strconv.Quote",
		},
		{
			name: "payload_of_an_unknown_type",
			code: "// TypeA is a.\nconst TypeA = \"a\"\n\n// B is the payload of b.\ntype B struct{}\n",
			want: "B (payload of b)",
		},
		{
			name: "field_without_json_tag",
			code: "// TypeA is a.\nconst TypeA = \"a\"\n\n// A is the payload of a.\ntype A struct{ Page int }\n",
			want: "A.Page has no json tag",
		},
		{
			name: "two_helpers_match_one_type",
			code: "// TypeJobFailed is f.\nconst TypeJobFailed = \"f\"\n\n// FailedID is f.\nfunc FailedID(j string) string { return j }\n\n// JobFailedID is f.\nfunc JobFailedID(j string) string { return j }\n",
			want: "TypeJobFailed matches several id helpers",
		},
		{
			name: "no_event_types",
			code: "// ExtA is a.\nconst ExtA = \"a\"\n",
			want: "no Type constants",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalogue.Generate(source(t, tc.code), nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSplice(t *testing.T) {
	doc := "# Doc\n\n" + catalogue.Begin + "\nold\n" + catalogue.End + "\n\nafter\n"
	for _, tc := range []struct {
		name    string
		doc     string
		want    string
		wantErr string
	}{
		{name: "replaces_the_block", doc: doc, want: "# Doc\n\n" + catalogue.Begin + "\n\nnew\n\n" + catalogue.End + "\n\nafter\n"},
		{name: "missing_begin", doc: "x\n" + catalogue.End, wantErr: "0 begin markers"},
		{name: "two_ends", doc: catalogue.Begin + catalogue.End + catalogue.End, wantErr: "2 end markers"},
		{name: "end_before_begin", doc: catalogue.End + "\n" + catalogue.Begin, wantErr: "end marker comes before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := catalogue.Splice([]byte(tc.doc), []byte("\nnew\n"))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(out))
			cur, err := catalogue.Current(out)
			require.NoError(t, err)
			assert.Equal(t, "new", string(cur), "Current reads back what Splice wrote")
		})
	}
}
