package config_test

import (
	"os"
	"strings"
	"testing"

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
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range config.Vars {
				if !strings.Contains(string(b), tc.line(v)) {
					t.Errorf("%s does not document %s with default %q", tc.file, v.Name, v.Default)
				}
			}
		})
	}
}
