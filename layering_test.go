package ocrflow

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goList runs `go list` with args and returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	require.NoError(t, err, "go list %v", args)
	return strings.Fields(string(out))
}

// The layers the house rests on: shared/ is the library the stages stand
// on and never imports a stage; the stages are assembled only by the
// composition root (internal/app); and the Knative function links no
// NATS (it talks HTTP to the broker), so its image carries no embedded
// server it never starts.
func TestLayering(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const module = "github.com/ocrflow/ocrflow/"
	t.Run("shared_imports_no_stage", func(t *testing.T) {
		for _, p := range goList(t, "-deps", "./shared/...") {
			assert.False(t, strings.HasPrefix(p, module+"functions/"), "a package under shared/ depends on %s", p)
			assert.False(t, strings.HasPrefix(p, module+"internal/app"), "a package under shared/ depends on %s", p)
		}
	})
	t.Run("only_the_composition_root_imports_stages", func(t *testing.T) {
		for _, line := range goList(t, "-f", `{{.ImportPath}}|{{join .Imports ","}}`, "./...") {
			pkg, imports, _ := strings.Cut(line, "|")
			if pkg == module+"internal/app" || strings.HasPrefix(pkg, module+"functions/") {
				continue
			}
			for _, imp := range strings.Split(imports, ",") {
				assert.False(t, strings.HasPrefix(imp, module+"functions/"), "%s imports the stage %s; assemble stages in internal/app", pkg, imp)
			}
		}
	})
	t.Run("the_function_links_no_nats", func(t *testing.T) {
		deps := goList(t, "-deps", ".")
		require.Contains(t, deps, module+"internal/app", "the function is assembled by the composition root")
		for _, p := range deps {
			assert.False(t, strings.HasPrefix(p, "github.com/nats-io/"), "the Knative function links %s", p)
		}
	})
}
