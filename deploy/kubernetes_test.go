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
// k8s.io/api type, by kind.
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
				Kind string `json:"kind"`
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
			default:
				t.Fatalf("%s doc %d: unexpected kind %q", f, i, meta.Kind)
			}
			require.NoError(t, yaml.UnmarshalStrict(doc, obj), "%s doc %d (%s)", f, i, meta.Kind)
			out[meta.Kind] = obj
		}
	}
	return out
}

func TestKubernetesManifests(t *testing.T) {
	m := manifests(t)
	d := m["Deployment"].(*appsv1.Deployment)
	c := d.Spec.Template.Spec.Containers[0]
	require.Equal(t, "/health/live", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "/health/ready", c.ReadinessProbe.HTTPGet.Path)
	require.NotNil(t, c.Lifecycle.PreStop, "preStop before the drain")
	require.False(t, c.Resources.Limits.Memory().IsZero())
	require.False(t, c.Resources.Requests.Cpu().IsZero())
	require.True(t, *d.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	require.Equal(t, "none", env["AURAX_SCALING_PROVIDER"], "the cluster scales; AURAX stays in dry run")
	require.Greater(t, int64(*d.Spec.Template.Spec.TerminationGracePeriodSeconds), int64(30), "longer than the drain")

	svc := m["Service"].(*corev1.Service)
	require.Equal(t, d.Spec.Selector.MatchLabels, svc.Spec.Selector)

	h := m["HorizontalPodAutoscaler"].(*autoscalingv2.HorizontalPodAutoscaler)
	require.Equal(t, int32(2), *h.Spec.MinReplicas)
	require.Equal(t, int32(20), h.Spec.MaxReplicas)
	require.Equal(t, d.Name, h.Spec.ScaleTargetRef.Name)
	got := map[string]string{}
	for _, mt := range h.Spec.Metrics {
		switch mt.Type {
		case autoscalingv2.ResourceMetricSourceType:
			got[string(mt.Resource.Name)] = strconv.Itoa(int(*mt.Resource.Target.AverageUtilization))
		case autoscalingv2.PodsMetricSourceType:
			got[mt.Pods.Metric.Name] = mt.Pods.Target.AverageValue.String()
		}
	}
	require.Equal(t, map[string]string{"cpu": "70", "memory": "80", "aurax_queue_depth": "5"}, got)

	so := m["ScaledObject"].(*scaledObject)
	require.Equal(t, "keda.sh/v1alpha1", so.APIVersion)
	require.Equal(t, d.Name, so.Spec.ScaleTargetRef.Name)
	require.Contains(t, so.Spec.Triggers[0].Metadata["query"], "aurax_queue_depth")

	cm := m["ConfigMap"].(*corev1.ConfigMap)
	require.Contains(t, cm.Data["config.yaml"], "aurax_queue_depth")
}
