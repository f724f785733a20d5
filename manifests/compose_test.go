package manifests_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestCompose checks docker-compose.yml: with `docker compose config` when
// the compose plugin is there, and by its structure always.
func TestCompose(t *testing.T) {
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err == nil {
		if out, err := exec.Command("docker", "compose", "-f", "../docker-compose.yml", "config", "-q").CombinedOutput(); err != nil {
			t.Fatalf("docker compose config: %v\n%s", err, out)
		}
	} else {
		t.Logf("docker compose plugin not available (%s); structure checks only", strings.TrimSpace(string(out)))
	}
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
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
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("compose file: %v", err)
	}
	for _, want := range []string{"nats", "minio", "postgres", "simple-content", "ocrflow", "vllm"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("service %s is missing", want)
		}
	}
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
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
			if _, ok := c.Services[d]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, d)
			}
		}
	}
	if p := c.Services["vllm"].Profiles; len(p) != 1 || p[0] != "gpu" {
		t.Errorf("vllm profiles %v, want [gpu]", p)
	}
	env := c.Services["ocrflow"].Environment
	for k, want := range map[string]string{"NATS_URL": "nats://nats:4222", "SIMPLE_CONTENT_URL": "http://simple-content:4000", "S3_ENDPOINT": "http://minio:9000"} {
		if env[k] != want {
			t.Errorf("ocrflow %s = %v, want %s", k, env[k], want)
		}
	}
}
