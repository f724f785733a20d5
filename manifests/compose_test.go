package manifests_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestCompose checks docker-compose.yml: with `docker compose config` when
// the compose plugin is there, and by its structure always.
func TestCompose(t *testing.T) {
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err == nil {
		out, err := exec.Command("docker", "compose", "-f", "../docker-compose.yml", "config", "-q").CombinedOutput()
		require.NoError(t, err, "docker compose config:\n%s", out)
	} else {
		t.Logf("docker compose plugin not available (%s); structure checks only", strings.TrimSpace(string(out)))
	}
	raw, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var c struct {
		Name     string `json:"name"`
		Services map[string]struct {
			Image       string         `json:"image"`
			Build       any            `json:"build"`
			Profiles    []string       `json:"profiles"`
			DependsOn   any            `json:"depends_on"`
			Environment map[string]any `json:"environment"`
			Command     any            `json:"command"`
			Entrypoint  any            `json:"entrypoint"`
			Ports       []string       `json:"ports"`
			Volumes     []string       `json:"volumes"`
			Healthcheck any            `json:"healthcheck"`
			Deploy      any            `json:"deploy"`
		} `json:"services"`
		Volumes map[string]any `json:"volumes"`
	}
	require.NoError(t, yaml.UnmarshalStrict(raw, &c), "compose file")
	for _, want := range []string{"nats", "minio", "postgres", "simple-content", "ocrflow", "vllm"} {
		assert.Contains(t, c.Services, want, "service %s is missing", want)
	}
	for name, s := range c.Services {
		assert.True(t, s.Image != "" || s.Build != nil, "service %s has neither image nor build", name)
		var deps []string
		switch d := s.DependsOn.(type) {
		case []any:
			for _, x := range d {
				deps = append(deps, x.(string))
			}
		case map[string]any:
			for k := range d {
				deps = append(deps, k)
			}
		}
		for _, d := range deps {
			assert.Contains(t, c.Services, d, "service %s depends on unknown service %s", name, d)
		}
	}
	assert.Equal(t, []string{"gpu"}, c.Services["vllm"].Profiles, "vllm profiles")
	env := c.Services["ocrflow"].Environment
	for k, want := range map[string]string{"NATS_URL": "nats://nats:4222", "SIMPLE_CONTENT_URL": "http://simple-content:4000", "S3_ENDPOINT": "http://minio:9000"} {
		assert.Equal(t, want, env[k], "ocrflow %s", k)
	}
}
