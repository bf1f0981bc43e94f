package deploy

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Every overlay and Job example renders, every object decodes strictly into its API type, and the pods
// follow the rules (non-root, read-only root, no privilege escalation, no capabilities, seccomp,
// requests and limits).
func TestManifestsRenderAndDecodeStrictly(t *testing.T) {
	for _, dir := range append(append([]string{}, overlays...), jobDirs...) {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			if len(r.Objects) == 0 {
				t.Fatalf("%s rendered no objects", dir)
			}
			for _, d := range Of[appsv1.Deployment](r) {
				checkPod(t, dir+" Deployment "+d.Name, &d.Spec.Template.Spec)
			}
			for _, j := range Of[batchv1.Job](r) {
				checkPod(t, dir+" Job "+j.Name, &j.Spec.Template.Spec)
			}
		})
	}
}

// The strict decode really rejects a misspelt field (so the test above can fail).
func TestStrictDecodeRejectsMisspeltFields(t *testing.T) {
	bad := map[string]string{
		"apps/v1/Deployment": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n" +
			"spec:\n  template:\n    spec:\n      containers:\n        - name: c\n          readinesProbe: {}\n",
		"networking.istio.io/v1/DestinationRule": "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n" +
			"metadata: {name: x}\nspec:\n  host: h\n  trafficPolicy:\n    loadBalancer: {simple: LEAST_REQUESTS}\n",
		"networking.istio.io/v1/VirtualService": "apiVersion: networking.istio.io/v1\nkind: VirtualService\n" +
			"metadata: {name: x}\nspec:\n  hosts: [h]\n  http:\n    - route: [{destination: {host: h}}]\n" +
			"      retries: {attempts: 3, retryOn: unavailable, perTryTimout: 1s}\n",
		"security.istio.io/v1/PeerAuthentication": "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n" +
			"metadata: {name: x}\nspec:\n  mtls: {mode: STRICTLY}\n",
	}
	for kind, doc := range bad {
		parts := strings.Split(kind, "/")
		if _, err := decodeStrict(strings.Join(parts[:len(parts)-1], "/"), parts[len(parts)-1], []byte(doc)); err == nil {
			t.Errorf("%s: a misspelt field or bad enum value was accepted", kind)
		}
	}
}

func checkPod(t *testing.T, where string, pod *corev1.PodSpec) {
	t.Helper()
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot must be true", where)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.SeccompProfile == nil ||
		pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile must be RuntimeDefault", where)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false (maas never calls the API server)", where)
	}
	for _, c := range pod.Containers {
		cw := where + " container " + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem must be true", cw)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation must be false", cw)
		}
		if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
			len(sc.Capabilities.Add) != 0 {
			t.Errorf("%s: capabilities must drop ALL and add none", cw)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[res]; !ok {
				t.Errorf("%s: no %s request", cw, res)
			}
			if _, ok := c.Resources.Limits[res]; !ok {
				t.Errorf("%s: no %s limit", cw, res)
			}
		}
		if c.Image == "" || len(c.Command) == 0 {
			t.Errorf("%s: image and command are required (one image, the command picks the program)", cw)
		}
		// The root filesystem is read-only: /tmp must be a volume.
		hasTmp := false
		for _, m := range c.VolumeMounts {
			hasTmp = hasTmp || m.MountPath == "/tmp"
		}
		if !hasTmp {
			t.Errorf("%s: no writable /tmp volume", cw)
		}
	}
}

// yamllint (Debian) on the sources and on every rendered overlay and Job.
func TestYamllint(t *testing.T) {
	config := filepath.Join(k8sDir(t), ".yamllint")
	if out, err := exec.Command("yamllint", "-c", config, "-s", k8sDir(t)).CombinedOutput(); err != nil {
		t.Errorf("yamllint deploy/k8s: %v\n%s", err, out)
	}
	for _, dir := range append(append([]string{}, overlays...), jobDirs...) {
		cmd := exec.Command("yamllint", "-c", config, "-s", "-")
		cmd.Stdin = strings.NewReader(string(render(t, dir).YAML))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("yamllint of rendered %s: %v\n%s", dir, err, out)
		}
	}
}
