package app_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
)

func load(t *testing.T, env map[string]string) (config.Config, error) {
	t.Helper()
	t.Chdir(t.TempDir()) // OUTPUT_DIR and CONTENT_DIR are relative
	return config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestNewContent_selects_the_store(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string // "simple-content", "dir" or an error text
		wantErr bool
	}{
		{"default_is_dir", nil, "dir", false},
		{"url_set_means_simple_content", map[string]string{"SIMPLE_CONTENT_URL": "http://sc:4000"}, "simple-content", false},
		{"dir_forced_despite_url", map[string]string{"SIMPLE_CONTENT_URL": "http://sc:4000", "CONTENT_STORE": "dir"}, "dir", false},
		{"simple_content_forced_without_url", map[string]string{"CONTENT_STORE": "simple-content"}, "CONTENT_STORE: simple-content needs SIMPLE_CONTENT_URL", true},
		{"unknown_store", map[string]string{"CONTENT_STORE": "ftp"}, `"ftp" is not auto, simple-content or dir`, true},
		{"url_with_api_prefix", map[string]string{"SIMPLE_CONTENT_URL": "http://sc:4000/api/v5"}, "give the base URL", true},
		{"bad_allowed_host", map[string]string{"SIMPLE_CONTENT_URL": "http://sc:4000", "SOURCE_ALLOWED_HOSTS": "http://minio:9000"}, "not a URL", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.env)
			var store app.ContentStore
			if err == nil {
				store, err = app.OpenContent(t.Context(), cfg, nil)
			}
			if tc.wantErr {
				assert.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			var got string
			switch store.(type) {
			case *simplecontent.Store:
				got = "simple-content"
			case *contentdir.Store:
				got = "dir"
			default:
				got = fmt.Sprintf("%T", store)
			}
			assert.Equal(t, tc.want, got, "store selected")
		})
	}
}

func TestSourcePolicy_defaults_to_the_configured_endpoints(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		allowed []string
		refused []string
	}{
		{"simple_content_and_minio", map[string]string{"SIMPLE_CONTENT_URL": "http://sc:4000", "S3_ENDPOINT": "http://minio:9000"},
			[]string{"http://sc:4000/x", "http://minio:9000/content/k?X-Amz-Signature=s"},
			[]string{"http://sc:4001/x", "https://bucket.s3.amazonaws.com/k", "http://169.254.169.254/"}},
		{"aws_without_endpoint", map[string]string{"SIMPLE_CONTENT_URL": "http://sc:4000"},
			[]string{"https://bucket.s3.us-east-1.amazonaws.com/k"},
			[]string{"http://minio:9000/k"}},
		{"explicit_list_replaces_defaults", map[string]string{"SIMPLE_CONTENT_URL": "http://sc:4000", "SOURCE_ALLOWED_HOSTS": "cdn.example.com, *.files.example.com"},
			[]string{"https://cdn.example.com/a", "https://eu.files.example.com/b"},
			[]string{"http://sc:4000/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.env)
			require.NoError(t, err)
			p, err := app.SourcePolicy(cfg)
			require.NoError(t, err)
			for _, raw := range append(tc.allowed, tc.refused...) {
				u, _ := url.Parse(raw)
				allowed := p.Check(u) == nil
				want := !strings.Contains(strings.Join(tc.refused, " "), raw)
				assert.Equal(t, want, allowed, "Check(%s) allowed", raw)
			}
		})
	}
}

func TestRecipeFor_keys_depend_on_model_and_pipeline_version(t *testing.T) {
	cfg, err := load(t, map[string]string{"OCR_TESSERACT_LANGS": "eng+deu"})
	require.NoError(t, err)
	r := app.RecipeFor(cfg, "")
	assert.Equal(t, "tesseract", r.Engine, "recipe = %+v", r)
	assert.Equal(t, "tesseract:eng+deu", r.Model, "recipe = %+v", r)
	assert.Equal(t, content.PipelineVersion, r.PipelineVersion, "recipe = %+v", r)
	for _, tc := range []struct {
		name            string
		env             map[string]string
		model, wantMode string
	}{
		{"vllm_profile_defaults", map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://vllm:8000/v1"}, "deepseek-ai/DeepSeek-OCR", "gundam"},
		{"vllm_configured", map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://vllm:8000/v1", "OCR_MODEL": "ocr-small", "OCR_MODE": "base"}, "ocr-small", "base"},
		{"fake", map[string]string{"OCR_ENGINE": "fake"}, "fake", content.DefaultMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env)
			require.NoError(t, err)
			r := app.RecipeFor(c, "")
			assert.Equal(t, tc.model, r.Model, "recipe = %+v", r)
			assert.Equal(t, tc.wantMode, r.Mode, "recipe = %+v", r)
		})
	}
	base := r.Key("c1", "")
	for name, other := range map[string]string{
		"mode_hint":  r.Key("c1", "gundam"),
		"content":    r.Key("c2", ""),
		"engine":     app.RecipeFor(cfg, "fake").Key("c1", ""),
		"pipeline_v": content.IdempotencyKey("c1", "2", r.Model, content.DefaultMode),
	} {
		assert.NotEqual(t, base, other, "changing the %s does not change the key", name)
	}
}
