package deploy_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// scaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject the
// manifest uses (KEDA's Go module is too heavy a dependency for one test);
// unknown fields still fail the strict decode.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef  autoscalingv2.CrossVersionObjectReference `json:"scaleTargetRef"`
		MinReplicaCount int                                       `json:"minReplicaCount"`
		MaxReplicaCount int                                       `json:"maxReplicaCount"`
		PollingInterval int                                       `json:"pollingInterval"`
		CooldownPeriod  int                                       `json:"cooldownPeriod"`
		Advanced        struct {
			HorizontalPodAutoscalerConfig struct {
				Behavior autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior"`
			} `json:"horizontalPodAutoscalerConfig"`
		} `json:"advanced"`
		Triggers []struct {
			Type       string            `json:"type"`
			MetricType string            `json:"metricType"`
			Metadata   map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// manifests decodes every document of deploy/kubernetes strictly into its
// k8s.io/api type, keyed "Kind/name".
func manifests(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	require.NoError(t, err)
	more, err := filepath.Glob("kubernetes/*/*.yaml")
	require.NoError(t, err)
	files = append(files, more...)
	require.NotEmpty(t, files)
	out := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var meta struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			require.NoError(t, yaml.Unmarshal(doc, &meta))
			var obj any
			switch meta.Kind {
			case "Deployment":
				obj = &appsv1.Deployment{}
			case "Service":
				obj = &corev1.Service{}
			case "HorizontalPodAutoscaler":
				obj = &autoscalingv2.HorizontalPodAutoscaler{}
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			case "ScaledObject":
				obj = &scaledObject{}
			case "PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			default:
				t.Fatalf("%s doc %d: unexpected kind %q", f, i, meta.Kind)
			}
			require.NoError(t, yaml.UnmarshalStrict(doc, obj), "%s doc %d (%s)", f, i, meta.Kind)
			key := meta.Kind + "/" + meta.Metadata.Name
			require.NotContains(t, out, key, "%s twice", key)
			out[key] = obj
		}
	}
	return out
}

func envOf(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// TestKubernetesManifests: the gateways discover the engines through a
// headless Service that lists them ready or not (so they are warmed before
// they get requests); the engines (one GPU each, ready only once the model
// is loaded) are what the engine HPA and KEDA scale, on AURAX's queue per
// engine slot; the gateways have their own CPU HPA.
func TestKubernetesManifests(t *testing.T) {
	m := manifests(t)
	gw := m["Deployment/aurax-backend"].(*appsv1.Deployment)
	c := gw.Spec.Template.Spec.Containers[0]
	require.Equal(t, "/health/live", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "/health/ready", c.ReadinessProbe.HTTPGet.Path)
	require.NotNil(t, c.Lifecycle.PreStop, "preStop before the drain")
	require.False(t, c.Resources.Limits.Memory().IsZero())
	require.False(t, c.Resources.Requests.Cpu().IsZero())
	require.True(t, *gw.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
	env := envOf(c)
	require.Equal(t, "none", env["AURAX_SCALING_PROVIDER"], "the cluster scales; AURAX stays in dry run")
	require.Equal(t, "dns:ollama-engines:11434", env["AURAX_OLLAMA_DISCOVER"])
	require.Equal(t, "aurax-backend-peers", env["AURAX_SCALING_PEERS_DNS"], "gateways share the engines' slots")
	require.Greater(t, int64(*gw.Spec.Template.Spec.TerminationGracePeriodSeconds), int64(30), "longer than the drain")

	svc := m["Service/aurax-backend"].(*corev1.Service)
	require.Equal(t, gw.Spec.Selector.MatchLabels, svc.Spec.Selector)
	peers := m["Service/aurax-backend-peers"].(*corev1.Service)
	require.Equal(t, "None", peers.Spec.ClusterIP)
	require.Equal(t, gw.Spec.Selector.MatchLabels, peers.Spec.Selector)

	eng := m["Deployment/ollama"].(*appsv1.Deployment)
	ec := eng.Spec.Template.Spec.Containers[0]
	require.Equal(t, "1", ec.Resources.Limits.Name("nvidia.com/gpu", "").String(), "one GPU per engine")
	require.Contains(t, ec.ReadinessProbe.Exec.Command[2], "ollama ps", "ready means the model is loaded")
	eenv := envOf(ec)
	require.Equal(t, env["OLLAMA_NUM_PARALLEL"], eenv["OLLAMA_NUM_PARALLEL"], "the gateways count the engines' slots")
	require.Equal(t, "ollama-models", eng.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName)
	pvc := m["PersistentVolumeClaim/ollama-models"].(*corev1.PersistentVolumeClaim)
	require.Equal(t, corev1.ReadWriteMany, pvc.Spec.AccessModes[0], "one models volume for every engine")
	engines := m["Service/ollama-engines"].(*corev1.Service)
	require.Equal(t, "None", engines.Spec.ClusterIP, "headless: every engine pod by DNS")
	require.True(t, engines.Spec.PublishNotReadyAddresses, "the gateways see an engine before it is warm, and warm it")
	require.Equal(t, eng.Spec.Selector.MatchLabels, engines.Spec.Selector)

	h := m["HorizontalPodAutoscaler/ollama-hpa"].(*autoscalingv2.HorizontalPodAutoscaler)
	require.Equal(t, eng.Name, h.Spec.ScaleTargetRef.Name, "the HPA scales the engines")
	require.Equal(t, autoscalingv2.ExternalMetricSourceType, h.Spec.Metrics[0].Type)
	require.Equal(t, "aurax_engine_demand", h.Spec.Metrics[0].External.Metric.Name)
	require.Equal(t, eenv["OLLAMA_NUM_PARALLEL"], h.Spec.Metrics[0].External.Target.AverageValue.String(), "demand per engine slot")
	gh := m["HorizontalPodAutoscaler/aurax-backend-hpa"].(*autoscalingv2.HorizontalPodAutoscaler)
	require.Equal(t, gw.Name, gh.Spec.ScaleTargetRef.Name)
	got := map[string]string{}
	for _, mt := range gh.Spec.Metrics {
		got[string(mt.Resource.Name)] = strconv.Itoa(int(*mt.Resource.Target.AverageUtilization))
	}
	require.Equal(t, map[string]string{"cpu": "70", "memory": "80"}, got)

	so := m["ScaledObject/ollama"].(*scaledObject)
	require.Equal(t, "keda.sh/v1alpha1", so.APIVersion)
	require.Equal(t, eng.Name, so.Spec.ScaleTargetRef.Name, "KEDA scales the engines")
	tr := so.Spec.Triggers[0].Metadata
	require.Contains(t, tr["query"], "aurax_queue_depth")
	require.Contains(t, tr["query"], "aurax_queue_in_flight")
	require.Equal(t, eenv["OLLAMA_NUM_PARALLEL"], tr["threshold"])
	require.NotEmpty(t, tr["activationThreshold"], "one request does not wake a GPU")
	require.NotEqual(t, "0", tr["activationThreshold"])

	cm := m["ConfigMap/prometheus-adapter-aurax"].(*corev1.ConfigMap)
	require.Contains(t, cm.Data["config.yaml"], "aurax_engine_demand")
}
