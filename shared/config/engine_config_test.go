package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/config"
)

func TestFromLookup_model_server_settings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string // "" = valid
	}{
		{name: "vllm_with_url", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://vllm:8000/v1"}},
		{name: "kserve_prefix_and_fallback", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "https://isvc.ns.svc/openai/v1", "OCR_FALLBACK_ENGINE": "tesseract", "OCR_PROFILE": "deepseek-ocr-2", "OCR_MODE": "small"}},
		{name: "vllm_needs_a_url", env: map[string]string{"OCR_ENGINE": "vllm"}, wantErr: "OCR_ENGINE_URL: OCR_ENGINE=vllm needs"},
		{name: "url_must_be_http", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "vllm:8000"}, wantErr: "is not an http(s) URL"},
		{name: "unknown_profile", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "OCR_PROFILE": "gpt-4o"}, wantErr: "OCR_PROFILE: profile \"gpt-4o\" is unknown"},
		{name: "mode_of_another_profile", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "OCR_PROFILE": "olmocr-2", "OCR_MODE": "gundam"}, wantErr: "OCR_MODE: mode \"gundam\" is not one of base"},
		{name: "generic_needs_a_model", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "OCR_PROFILE": "generic"}, wantErr: "OCR_MODEL: profile generic needs"},
		{name: "fallback_is_a_cpu_engine", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "OCR_FALLBACK_ENGINE": "vllm"}, wantErr: "OCR_FALLBACK_ENGINE"},
		{name: "inflight_policy_fixed", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "OCR_INFLIGHT_POLICY": "Fixed"}},
		{name: "inflight_policy_unknown", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "OCR_INFLIGHT_POLICY": "vegas"}, wantErr: "OCR_INFLIGHT_POLICY"},
		{name: "inflight_at_least_one", env: map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "OCR_MAX_INFLIGHT": "0"}, wantErr: "OCR_MAX_INFLIGHT: must be at least 1"},
		{name: "unknown_engine_lists_vllm", env: map[string]string{"OCR_ENGINE": "gpu"}, wantErr: "known: tesseract, vllm, fake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.FromLookup(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestRecognizers_default_to_the_inflight_cap_for_a_model_server(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"vllm_uses_OCR_MAX_INFLIGHT_and_room_to_wait", map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "OCR_MAX_INFLIGHT": "10"}, 12},
		{"vllm_default", map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1"}, 576},
		{"explicit_workers_win", map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": "http://v/v1", "RECOGNIZE_WORKERS": "3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.FromLookup(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Recognizers(), "Recognizers")
		})
	}
}
