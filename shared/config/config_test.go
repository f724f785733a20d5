package config_test

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// lookup returns a lookup function over m.
func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// defaultOf returns the declared default of the variable name.
func defaultOf(t *testing.T, name string) string {
	t.Helper()
	for _, v := range config.Vars {
		if v.Name == name {
			return v.Default
		}
	}
	require.FailNow(t, "no variable in config.Vars", "no variable %s in config.Vars", name)
	return ""
}

func TestFromLookup_defaults_match_Vars(t *testing.T) {
	c, err := config.FromLookup(lookup(nil))
	require.NoError(t, err, "defaults do not load")
	mustDur := func(name string) time.Duration {
		d, err := time.ParseDuration(defaultOf(t, name))
		require.NoError(t, err, "%s default", name)
		return d
	}
	mustInt := func(name string) int64 {
		n, err := strconv.ParseInt(defaultOf(t, name), 10, 64)
		require.NoError(t, err, "%s default", name)
		return n
	}
	for _, tc := range []struct {
		name     string
		got, def any
	}{
		{"OCR_STAGES", strings.Join(c.Stages, ","), defaultOf(t, "OCR_STAGES")},
		{"OCR_ENGINE", c.Engine, defaultOf(t, "OCR_ENGINE")},
		{"OCR_TESSERACT_LANGS", c.TesseractLangs, defaultOf(t, "OCR_TESSERACT_LANGS")},
		{"OCR_PAGE_TIMEOUT", c.PageTimeout, mustDur("OCR_PAGE_TIMEOUT")},
		{"BLOB_URL", c.BlobURL, defaultOf(t, "BLOB_URL")},
		{"CONTENT_DIR", c.ContentDir, defaultOf(t, "CONTENT_DIR")},
		{"OUTPUT_DIR", c.OutputDir, defaultOf(t, "OUTPUT_DIR")},
		{"NATS_URL", c.NATSURL, defaultOf(t, "NATS_URL")},
		{"NATS_LISTEN", c.NATSListen, defaultOf(t, "NATS_LISTEN")},
		{"NATS_STORE_DIR", c.NATSStoreDir, defaultOf(t, "NATS_STORE_DIR")},
		{"NATS_JOB_SUBJECT", c.JobSubject, defaultOf(t, "NATS_JOB_SUBJECT")},
		{"MAX_SOURCE_BYTES", c.MaxSourceBytes, mustInt("MAX_SOURCE_BYTES")},
		{"MAX_PAGES", int64(c.MaxPages), mustInt("MAX_PAGES")},
		{"MAX_IMAGE_PIXELS", c.MaxImagePixels, mustInt("MAX_IMAGE_PIXELS")},
		{"CONVERT_WORKERS", int64(c.ConvertWorkers), mustInt("CONVERT_WORKERS")},
		{"RECOGNIZE_WORKERS", int64(c.RecognizeWorkers), mustInt("RECOGNIZE_WORKERS")},
		{"LOG_LEVEL", c.LogLevel, defaultOf(t, "LOG_LEVEL")},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout, mustDur("SHUTDOWN_TIMEOUT")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.def, tc.got, "%s, want its declared default", tc.name)
		})
	}
	t.Run("serves_every_stage_by_default", func(t *testing.T) {
		for _, s := range stage.Pipeline() {
			assert.True(t, c.Serves(s), "default config does not serve %s", s)
		}
	})
}

func TestVars_are_well_formed(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range config.Vars {
		t.Run(v.Name, func(t *testing.T) {
			assert.False(t, seen[v.Name], "%s declared twice", v.Name)
			seen[v.Name] = true
			assert.Equal(t, strings.ToUpper(v.Name), v.Name, "%q is not an UPPER_SNAKE environment variable name", v.Name)
			assert.False(t, strings.ContainsAny(v.Name, " -"), "%q is not an UPPER_SNAKE environment variable name", v.Name)
			assert.NotEmpty(t, strings.TrimSpace(v.Doc), "%s has no documentation", v.Name)
		})
	}
}

func TestFromLookup_overrides(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c config.Config)
	}{
		{
			name: "stage_subset_with_spaces",
			env:  map[string]string{"OCR_STAGES": " recognize , finalize ,"},
			check: func(t *testing.T, c config.Config) {
				assert.Equal(t, []string{"recognize", "finalize"}, c.Stages, "Stages")
				assert.False(t, c.Serves(stage.Convert), "Serves(convert) for %v", c.Stages)
				assert.True(t, c.Serves(stage.Recognize), "Serves(recognize) for %v", c.Stages)
			},
		},
		{
			name: "empty_value_means_default",
			env:  map[string]string{"OCR_ENGINE": "", "MAX_PAGES": ""},
			check: func(t *testing.T, c config.Config) {
				assert.Equal(t, defaultOf(t, "OCR_ENGINE"), c.Engine, "Engine, want the default")
				assert.Equal(t, defaultOf(t, "MAX_PAGES"), strconv.Itoa(c.MaxPages), "MaxPages, want the default")
			},
		},
		{
			name: "typed_values",
			env: map[string]string{
				"OCR_ENGINE": "fake", "OCR_PAGE_TIMEOUT": "1m30s", "MAX_PAGES": "7",
				"MAX_SOURCE_BYTES": "0", "RECOGNIZE_WORKERS": "3", "LOG_LEVEL": "debug",
			},
			check: func(t *testing.T, c config.Config) {
				assert.Equal(t, "fake", c.Engine, "Engine")
				assert.Equal(t, 90*time.Second, c.PageTimeout, "PageTimeout")
				assert.Equal(t, 7, c.MaxPages, "MaxPages")
				assert.Zero(t, c.MaxSourceBytes, "MaxSourceBytes")
				assert.Equal(t, 3, c.RecognizeWorkers, "RecognizeWorkers")
				assert.Equal(t, "debug", c.LogLevel, "LogLevel")
				assert.Equal(t, 3, c.Recognizers(), "Recognizers, want RECOGNIZE_WORKERS=3")
			},
		},
		{
			name: "outputs_in_canonical_order",
			env:  map[string]string{"OCR_OUTPUTS": "pdf, json ,markdown"},
			check: func(t *testing.T, c config.Config) {
				assert.Equal(t, []string{"markdown", "json", "pdf"}, c.Outputs, "Outputs")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.FromLookup(lookup(tc.env))
			require.NoError(t, err, "FromLookup")
			tc.check(t, c)
		})
	}
}

func TestFromLookup_bad_values_name_the_variable(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		// wantVars must all be named in the error.
		wantVars []string
		// unquoted: the message states a rule instead of quoting the value.
		unquoted bool
	}{
		{"unknown_stage", map[string]string{"OCR_STAGES": "bogus"}, []string{"OCR_STAGES"}, false},
		{"no_stage", map[string]string{"OCR_STAGES": " , "}, []string{"OCR_STAGES"}, true},
		{"negative_timeout", map[string]string{"OCR_PAGE_TIMEOUT": "-1s"}, []string{"OCR_PAGE_TIMEOUT"}, false},
		{"zero_timeout", map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, []string{"SHUTDOWN_TIMEOUT"}, false},
		{"timeout_without_unit", map[string]string{"OCR_PAGE_TIMEOUT": "30"}, []string{"OCR_PAGE_TIMEOUT"}, false},
		{"max_pages_not_a_number", map[string]string{"MAX_PAGES": "abc"}, []string{"MAX_PAGES"}, false},
		{"max_source_bytes_negative", map[string]string{"MAX_SOURCE_BYTES": "-5"}, []string{"MAX_SOURCE_BYTES"}, false},
		{"max_image_pixels_float", map[string]string{"MAX_IMAGE_PIXELS": "1e8"}, []string{"MAX_IMAGE_PIXELS"}, false},
		{"unknown_engine", map[string]string{"OCR_ENGINE": "nope"}, []string{"OCR_ENGINE"}, false},
		{"unknown_log_level", map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL"}, false},
		{"zero_convert_workers", map[string]string{"CONVERT_WORKERS": "0"}, []string{"CONVERT_WORKERS"}, true},
		{"unknown_output", map[string]string{"OCR_OUTPUTS": "markdown,html"}, []string{"OCR_OUTPUTS"}, false},
		{
			"every_error_is_reported_at_once",
			map[string]string{"MAX_PAGES": "abc", "OCR_PAGE_TIMEOUT": "-1s", "OCR_STAGES": "bogus"},
			[]string{"MAX_PAGES", "OCR_PAGE_TIMEOUT", "OCR_STAGES"}, false,
		},
		{
			"every_validation_error_is_reported_at_once",
			map[string]string{"OCR_ENGINE": "nope", "LOG_LEVEL": "loud"},
			[]string{"OCR_ENGINE", "LOG_LEVEL"}, false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.FromLookup(lookup(tc.env))
			require.Error(t, err, "FromLookup(%v) succeeded, want an error", tc.env)
			for _, v := range tc.wantVars {
				assert.ErrorContains(t, err, v, "the error does not name %s", v)
			}
			for k, v := range tc.env {
				if tc.unquoted || !slices.Contains(tc.wantVars, k) {
					continue
				}
				assert.ErrorContains(t, err, v, "the error does not quote the bad value %q of %s", v, k)
			}
		})
	}
}

func TestRecognizers_defaults_to_one_per_CPU(t *testing.T) {
	c, err := config.FromLookup(lookup(map[string]string{"RECOGNIZE_WORKERS": "0"}))
	require.NoError(t, err)
	assert.Equal(t, runtime.NumCPU(), c.Recognizers(), "Recognizers, want runtime.NumCPU()")
}

func TestLoad_environment_wins(t *testing.T) {
	t.Chdir(t.TempDir()) // no .env here
	t.Setenv("OCR_ENGINE", "fake")
	t.Setenv("MAX_PAGES", "12")
	c, err := config.Load()
	require.NoError(t, err)
	assert.Equal(t, "fake", c.Engine, "Load: engine, want the environment's")
	assert.Equal(t, 12, c.MaxPages, "Load: max pages, want the environment's")
}
