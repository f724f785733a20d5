package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/config"
)

// TestDocumentation_lists_every_variable keeps .env.example and
// docs/configuration.md true to config.Vars.
func TestDocumentation_lists_every_variable(t *testing.T) {
	for _, tc := range []struct {
		file string
		line func(v config.Var) string
	}{
		{"../../.env.example", func(v config.Var) string { return "#" + v.Name + "=" + v.Default + "\n" }},
		{"../../docs/configuration.md", func(v config.Var) string { return "| `" + v.Name + "` | `" + v.Default + "` |" }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			require.NoError(t, err)
			for _, v := range config.Vars {
				// strings.Contains, not assert.Contains: a miss would print the whole file.
				assert.True(t, strings.Contains(string(b), tc.line(v)), "%s does not document %s with default %q (want the line %q)", tc.file, v.Name, v.Default, tc.line(v))
			}
		})
	}
}
