package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/config"
)

func TestAPITokens(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        map[string]string
		err         string
	}{
		{"unset_means_no_authentication", "", nil, ""},
		{"pairs_bind_tokens_to_tenants", " t1:acme , t2:globex ,", map[string]string{"t1": "acme", "t2": "globex"}, ""},
		{"entry_without_a_tenant_is_refused", "t1:acme,t2", nil, "API_TOKENS: each entry must be token:tenant"},
		{"empty_token_is_refused", ":acme", nil, "API_TOKENS: each entry must be token:tenant"},
		{"token_listed_twice_is_refused", "t1:acme,t1:globex", nil, "API_TOKENS: a token is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.FromLookup(func(k string) (string, bool) {
				if k == "API_TOKENS" {
					return tc.value, true
				}
				return "", false
			})
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), "acme", "the error must not repeat the configured values")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.APITokens)
		})
	}
}
