// Package manifests_test proves every Kubernetes manifest in eventing/ and
// manifests/ with the validation code of the project that owns its kind.
// It is a test-only package: the runtime binary links none of these
// modules. Nothing here reaches a cluster.
package manifests_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kservev1beta1 "github.com/kserve/kserve/pkg/apis/serving/v1beta1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	messagingv1 "knative.dev/eventing/pkg/apis/messaging/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
)

// funcWriteTimeout is func-go's fixed HTTP write timeout: a Trigger that
// waits longer than this gets no reply.
const funcWriteTimeout = 30 * time.Second

// overlays are every kustomize entry point.
var overlays = []string{"overlays/dev", "overlays/prod", "overlays/deepseek-ocr-2", "overlays/autoocr", "base"}

// object is one rendered manifest.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	raw []byte
}

func (o object) String() string { return o.Kind + "/" + o.Metadata.Name }

// build runs kustomize (the Go API, as `kustomize build`) on dir.
func build(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, "kustomize build %s", dir)
	var out []object
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		require.NoError(t, err)
		var o object
		require.NoError(t, yaml.Unmarshal(b, &o))
		o.raw = b
		out = append(out, o)
	}
	return out
}

// validationContext enables the Knative features current releases enable by
// default; without delivery-timeout, spec.delivery.timeout is rejected.
func validationContext() context.Context {
	flags := feature.Flags{feature.DeliveryTimeout: feature.Enabled}
	return feature.ToContext(context.Background(), flags)
}

// acknowledged lists validator warnings we keep on purpose, with the reason.
var acknowledged = map[string]string{}

// validate decodes o strictly into its owner's Go type and runs that
// project's validation. Warning-level findings are errors unless
// acknowledged.
func validate(ctx context.Context, o object) error {
	strict := func(v any) error {
		if err := yaml.UnmarshalStrict(o.raw, v); err != nil {
			return fmt.Errorf("%s: strict decode: %w", o, err)
		}
		return nil
	}
	knative := func(fe *apis.FieldError) error {
		if fe == nil {
			return nil
		}
		var errs []error
		if e := fe.Filter(apis.ErrorLevel); e != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o, e))
		}
		if w := fe.Filter(apis.WarningLevel); w != nil {
			if _, ok := acknowledged[o.String()+": "+w.Error()]; !ok {
				errs = append(errs, fmt.Errorf("%s: warning: %w", o, w))
			}
		}
		return errors.Join(errs...)
	}
	switch o.APIVersion + " " + o.Kind {
	case "eventing.knative.dev/v1 Broker":
		var b eventingv1.Broker
		if err := strict(&b); err != nil {
			return err
		}
		b.SetDefaults(ctx)
		return knative(b.Validate(ctx))
	case "eventing.knative.dev/v1 Trigger":
		var tr eventingv1.Trigger
		if err := strict(&tr); err != nil {
			return err
		}
		tr.SetDefaults(ctx)
		return knative(tr.Validate(ctx))
	case "serving.knative.dev/v1 Service":
		var s servingv1.Service
		if err := strict(&s); err != nil {
			return err
		}
		s.SetDefaults(ctx)
		return knative(s.Validate(ctx))
	case "serving.kserve.io/v1beta1 InferenceService":
		var isvc kservev1beta1.InferenceService
		if err := strict(&isvc); err != nil {
			return err
		}
		warnings, err := (&kservev1beta1.InferenceServiceValidator{}).ValidateCreate(ctx, &isvc)
		if err != nil {
			return fmt.Errorf("%s: %w", o, err)
		}
		if len(warnings) > 0 {
			return fmt.Errorf("%s: warnings: %v", o, warnings)
		}
		return nil
	case "v1 ConfigMap":
		var cm corev1.ConfigMap
		if err := strict(&cm); err != nil {
			return err
		}
		if spec, ok := cm.Data["channel-template-spec"]; ok {
			var ct messagingv1.ChannelTemplateSpec
			if err := yaml.UnmarshalStrict([]byte(spec), &ct); err != nil {
				return fmt.Errorf("%s: channel-template-spec: %w", o, err)
			}
			if ct.Kind != "NatsJetStreamChannel" || ct.APIVersion != "messaging.knative.dev/v1alpha1" {
				return fmt.Errorf("%s: channel template is %s %s, want messaging.knative.dev/v1alpha1 NatsJetStreamChannel", o, ct.APIVersion, ct.Kind)
			}
		}
		return nil
	case "v1 Secret":
		return strict(&corev1.Secret{})
	case "v1 Namespace":
		return strict(&corev1.Namespace{})
	case "v1 Service":
		return strict(&corev1.Service{})
	case "apps/v1 StatefulSet":
		return strict(&appsv1.StatefulSet{})
	case "networking.k8s.io/v1 NetworkPolicy":
		return strict(&networkingv1.NetworkPolicy{})
	default:
		return fmt.Errorf("%s: no validator for %s %s", o, o.APIVersion, o.Kind)
	}
}

func TestOverlays_build_and_validate(t *testing.T) {
	ctx := validationContext()
	for _, dir := range overlays {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			objs := build(t, dir)
			require.NotEmpty(t, objs, "kustomize produced nothing")
			for _, o := range objs {
				assert.NoError(t, validate(ctx, o))
			}
			for _, err := range crossCheck(objs) {
				assert.NoError(t, err)
			}
		})
	}
}

// crossCheck applies the rules no single validator knows.
func crossCheck(objs []object) []error {
	var errs []error
	services := map[string]servingv1.Service{}
	var triggers []eventingv1.Trigger
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			if o.APIVersion == "serving.knative.dev/v1" {
				var s servingv1.Service
				_ = yaml.Unmarshal(o.raw, &s)
				services[s.Name] = s
			}
		case "Trigger":
			var tr eventingv1.Trigger
			_ = yaml.Unmarshal(o.raw, &tr)
			triggers = append(triggers, tr)
		}
	}
	filtered := map[string]bool{}
	for _, tr := range triggers {
		sub := tr.Spec.Subscriber.Ref
		svc, ok := services[sub.Name]
		if sub == nil || !ok {
			errs = append(errs, fmt.Errorf("trigger %s: subscriber %v is not a Service in the build", tr.Name, sub))
		}
		d := tr.Spec.Delivery
		if d == nil {
			errs = append(errs, fmt.Errorf("trigger %s: no delivery spec (the Broker's would apply)", tr.Name))
			continue
		}
		if d.Retry == nil || d.BackoffPolicy == nil || d.BackoffDelay == nil || d.Timeout == nil {
			errs = append(errs, fmt.Errorf("trigger %s: retry, backoffPolicy, backoffDelay and timeout must be set together (the NATS dispatcher dereferences the policy)", tr.Name))
		}
		if d.DeadLetterSink == nil || d.DeadLetterSink.Ref == nil {
			errs = append(errs, fmt.Errorf("trigger %s: no dead-letter sink", tr.Name))
		} else if _, ok := services[d.DeadLetterSink.Ref.Name]; !ok {
			errs = append(errs, fmt.Errorf("trigger %s: dead-letter sink %s is not a Service in the build", tr.Name, d.DeadLetterSink.Ref.Name))
		}
		if d.Timeout != nil {
			to, err := eventing.ParseDuration(*d.Timeout)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("trigger %s: timeout: %w", tr.Name, err))
			case to > funcWriteTimeout:
				errs = append(errs, fmt.Errorf("trigger %s: timeout %s exceeds func-go's %s write timeout", tr.Name, to, funcWriteTimeout))
			case ok && svc.Spec.Template.Spec.TimeoutSeconds != nil && to > time.Duration(*svc.Spec.Template.Spec.TimeoutSeconds)*time.Second:
				errs = append(errs, fmt.Errorf("trigger %s: timeout %s exceeds the Service's timeoutSeconds", tr.Name, to))
			}
		}
		for _, f := range tr.Spec.Filters {
			if typ, ok := f.Exact["type"]; ok {
				filtered[typ] = true
			}
		}
	}
	// Every event type a stage emits is routed by a Trigger or is a
	// documented lifecycle output for the platform.
	for _, typ := range []string{events.TypeJob, events.TypePageRendered, events.TypePageRecognized,
		events.TypeJobStarted, events.TypeJobProgress, events.TypeJobCompleted, events.TypeJobFailed} {
		if !filtered[typ] && !events.Lifecycle(typ) {
			errs = append(errs, fmt.Errorf("event type %s has no Trigger and is not a lifecycle output", typ))
		}
	}
	return errs
}

// TestStandalone_routing_equals_the_built_triggers: the Triggers Knative
// gets are the ones `ocrflow serve` routes by.
func TestStandalone_routing_equals_the_built_triggers(t *testing.T) {
	embedded, err := eventing.Triggers()
	require.NoError(t, err)
	var built []eventing.Trigger
	for _, o := range build(t, "base") {
		if o.Kind != "Trigger" {
			continue
		}
		ts, err := eventing.Parse(o.raw)
		require.NoError(t, err)
		built = append(built, ts...)
	}
	slices.SortFunc(built, func(a, b eventing.Trigger) int { return strings.Compare(a.Name, b.Name) })
	assert.Equal(t, fmt.Sprintf("%+v", embedded), fmt.Sprintf("%+v", built), "kustomize-built triggers differ from the embedded routing")
}

// TestBroken_manifests_are_caught shows the checks failing on deliberately
// broken copies of the real Trigger file.
func TestBroken_manifests_are_caught(t *testing.T) {
	ctx := validationContext()
	for _, tc := range []struct {
		name, file, from, to string
	}{
		{"backoff_policy_missing", "eventing/triggers.yaml", "    backoffPolicy: exponential\n    backoffDelay: PT5S\n", "    backoffDelay: PT5S\n"},
		{"timeout_beyond_func_go", "eventing/triggers.yaml", "    backoffDelay: PT5S\n    timeout: PT30S\n", "    backoffDelay: PT5S\n    timeout: PT45S\n"},
		{"subscriber_renamed", "eventing/triggers.yaml", "      name: ocrflow-finalize\n  delivery:", "      name: ocrflow-finalise\n  delivery:"},
		{"bad_iso_duration", "eventing/triggers.yaml", "backoffDelay: PT1S", "backoffDelay: 1s"},
		{"no_dead_letter_sink", "eventing/triggers.yaml", "    backoffDelay: PT2S\n    timeout: PT30S\n    deadLetterSink:\n      ref:\n        apiVersion: serving.knative.dev/v1\n        kind: Service\n        name: ocrflow-deadletter\n", "    backoffDelay: PT2S\n    timeout: PT30S\n"},
		{"service_concurrency_negative", "manifests/base/services.yaml", "containerConcurrency: 16", "containerConcurrency: -1"},
		{"service_without_image", "manifests/base/services.yaml", "        image: ghcr.io/ocrflow/ocrflow:latest\n        args: [\"function\"]\n        env:\n        - name: OCR_STAGES\n          value: finalize", "        args: [\"function\"]\n        env:\n        - name: OCR_STAGES\n          value: finalize"},
		{"inference_service_scale_inverted", "manifests/base/inferenceservice.yaml", "    maxReplicas: 1\n", "    maxReplicas: -1\n"},
		{"unknown_field", "manifests/base/nats.yaml", "  serviceName: nats\n", "  serviceName: nats\n  replica: 2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join("..", tc.file))
			require.NoError(t, err)
			broken := strings.Replace(string(orig), tc.from, tc.to, 1)
			require.NotEqual(t, string(orig), broken, "the edit %q did not apply: the test no longer breaks anything", tc.from)
			dir := t.TempDir()
			copyTree(t, ".", filepath.Join(dir, "manifests"))
			copyTree(t, "../eventing", filepath.Join(dir, "eventing"))
			require.NoError(t, os.WriteFile(filepath.Join(dir, tc.file), []byte(broken), 0o644))
			objs := build(t, filepath.Join(dir, "manifests", "base"))
			var found []error
			for _, o := range objs {
				if err := validate(ctx, o); err != nil {
					found = append(found, err)
				}
			}
			found = append(found, crossCheck(objs)...)
			require.NotEmpty(t, found, "the broken manifest passed every check")
			t.Logf("caught: %v", errors.Join(found...))
		})
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !strings.HasSuffix(p, ".yaml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	require.NoError(t, err)
}

// funcModule is the func CLI release whose func.yaml schema we check
// against. The module cannot be built here (one of its dependencies is not
// served), but its source — and the schema file — can be downloaded.
const funcModule = "knative.dev/func@v0.50.1"

// knownSchemaGaps are findings of the func.yaml schema check acknowledged
// on purpose, with the reason.
var knownSchemaGaps = map[string]string{
	"/build/builder": "the published schema's enum lists pack and s2i only, but the func CLI " +
		"accepts `host` (pkg/builders) and `func run` needs it to run without a container engine",
}

func TestFuncYAML_matches_funcs_schema(t *testing.T) {
	out, err := exec.Command("go", "mod", "download", "-json", funcModule).Output()
	require.NoError(t, err, "download %s (the schema source)", funcModule)
	var mod struct{ Dir string }
	require.NoError(t, json.Unmarshal(out, &mod))
	c := jsonschema.NewCompiler()
	schemaPath := filepath.Join(mod.Dir, "schema", "func_yaml-schema.json")
	sch, err := c.Compile(schemaPath)
	require.NoError(t, err, "compile %s", schemaPath)
	raw, err := os.ReadFile("../func.yaml")
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(raw)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	require.NoError(t, err)
	var ve *jsonschema.ValidationError
	if err := sch.Validate(doc); err != nil {
		require.ErrorAs(t, err, &ve)
	}
	for _, leaf := range leaves(ve) {
		loc := "/" + strings.Join(leaf.InstanceLocation, "/")
		if _, ok := knownSchemaGaps[loc]; ok {
			continue
		}
		assert.Fail(t, "func.yaml does not match the schema", "func.yaml %s: %v", loc, leaf.ErrorKind)
	}
	var f struct {
		Invoke  string `json:"invoke"`
		Runtime string `json:"runtime"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &f))
	assert.Equal(t, "cloudevent", f.Invoke, "func.yaml invoke")
	assert.Equal(t, "go", f.Runtime, "func.yaml runtime")
}

func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if ve == nil {
		return nil
	}
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}
