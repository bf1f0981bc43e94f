package deploy

import (
	"fmt"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// podsOf returns every pod template of a render (Deployments and Jobs), by "Kind name".
func podsOf(r *Rendered) map[string]*corev1.PodSpec {
	pods := map[string]*corev1.PodSpec{}
	for _, d := range Of[appsv1.Deployment](r) {
		pods["Deployment "+d.Name] = &d.Spec.Template.Spec
	}
	for _, j := range Of[batchv1.Job](r) {
		pods["Job "+j.Name] = &j.Spec.Template.Spec
	}
	return pods
}

// volumeFileModes returns the modes of the files a Secret or ConfigMap volume (or a projection of them)
// creates, as the kubelet writes them: the item's mode, else defaultMode, else 0644.
func volumeFileModes(v *corev1.Volume) []int32 {
	modes := func(def *int32, items []corev1.KeyToPath) []int32 {
		d := int32(0o644)
		if def != nil {
			d = *def
		}
		out := []int32{d}
		for _, it := range items {
			if it.Mode != nil {
				out = append(out, *it.Mode)
			}
		}
		return out
	}
	switch {
	case v.Secret != nil:
		return modes(v.Secret.DefaultMode, v.Secret.Items)
	case v.ConfigMap != nil:
		return modes(v.ConfigMap.DefaultMode, v.ConfigMap.Items)
	case v.Projected != nil:
		var out []int32
		for _, s := range v.Projected.Sources {
			var items []corev1.KeyToPath
			switch {
			case s.Secret != nil:
				items = s.Secret.Items
			case s.ConfigMap != nil:
				items = s.ConfigMap.Items
			default:
				continue
			}
			out = append(out, modes(v.Projected.DefaultMode, items)...)
		}
		return out
	}
	return nil
}

// TestPodVolumesReadable: every container can read the Secret and ConfigMap files it mounts. The kubelet
// writes them owned by root, group-owned by the pod's fsGroup when it has one (else by root's group), with
// the volume's mode: a file that is not world-readable is readable by a non-root process only through that
// group (fsGroup, or gid 0 among its groups when there is no fsGroup).
func TestPodVolumesReadable(t *testing.T) {
	for _, dir := range append(append([]string{}, overlays...), jobDirs...) {
		r := render(t, dir)
		for where, pod := range podsOf(r) {
			volumes := map[string]*corev1.Volume{}
			for i := range pod.Volumes {
				volumes[pod.Volumes[i].Name] = &pod.Volumes[i]
			}
			for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
				uid, gids := processIdentity(pod, &c)
				var fsGroup *int64
				if pod.SecurityContext != nil {
					fsGroup = pod.SecurityContext.FSGroup
				}
				for _, m := range c.VolumeMounts {
					v := volumes[m.Name]
					if v == nil {
						continue // checkReferences reports it
					}
					for _, mode := range volumeFileModes(v) {
						if err := canRead(mode, uid, gids, fsGroup); err != nil {
							t.Errorf("%s: %s container %s cannot read volume %s (mode %#o) at %s: %v", dir, where,
								c.Name, m.Name, mode, m.MountPath, err)
						}
					}
				}
			}
		}
	}
}

// processIdentity is the uid and the groups a container's process runs with (container securityContext
// over the pod's; no runAsUser: the image's USER, which TestDockerfile requires to be non-root).
func processIdentity(pod *corev1.PodSpec, c *corev1.Container) (uid *int64, gids []int64) {
	var gid *int64
	if p := pod.SecurityContext; p != nil {
		uid, gid = p.RunAsUser, p.RunAsGroup
		gids = append(gids, p.SupplementalGroups...)
	}
	if s := c.SecurityContext; s != nil {
		if s.RunAsUser != nil {
			uid = s.RunAsUser
		}
		if s.RunAsGroup != nil {
			gid = s.RunAsGroup
		}
	}
	if gid != nil {
		gids = append(gids, *gid)
	}
	if p := pod.SecurityContext; p != nil && p.FSGroup != nil {
		gids = append(gids, *p.FSGroup) // the kubelet adds fsGroup to every container's groups
	}
	return uid, gids
}

func canRead(mode int32, uid *int64, gids []int64, fsGroup *int64) error {
	if mode&0o004 != 0 || (uid != nil && *uid == 0 && mode&0o400 != 0) {
		return nil
	}
	group := int64(0)
	if fsGroup != nil {
		group = *fsGroup
	}
	for _, g := range gids {
		if g == group && mode&0o040 != 0 {
			return nil
		}
	}
	if fsGroup == nil {
		return fmt.Errorf("not world-readable, files owned by root:root, and the pod sets no fsGroup")
	}
	return fmt.Errorf("not readable through group %d (fsGroup) by groups %v", group, gids)
}

// TestJobImages: the batch Jobs run the very image the Deployments serve (one image, one tag to roll):
// every container of every overlay's Deployments names the same image, and every Job container that one.
func TestJobImages(t *testing.T) {
	images := map[string][]string{}
	for _, dir := range overlays {
		for _, d := range Of[appsv1.Deployment](render(t, dir)) {
			for _, c := range d.Spec.Template.Spec.Containers {
				images[c.Image] = append(images[c.Image], dir+" "+d.Name)
			}
		}
	}
	if len(images) != 1 {
		t.Fatalf("the Deployments run %d images, want one: %v", len(images), images)
	}
	var image string
	for image = range images {
	}
	for _, dir := range jobDirs {
		for _, j := range Of[batchv1.Job](render(t, dir)) {
			for _, c := range append(append([]corev1.Container{}, j.Spec.Template.Spec.InitContainers...),
				j.Spec.Template.Spec.Containers...) {
				if c.Image != image {
					t.Errorf("%s: Job %s container %s runs image %q, the Deployments run %q", dir, j.Name, c.Name,
						c.Image, image)
				}
			}
		}
	}
}

// TestReplicasLeftToHPA: a Deployment an HPA scales has no spec.replicas, or every `kubectl apply` would
// set it back to that count under the HPA (overlays without HPAs may set replicas).
func TestReplicasLeftToHPA(t *testing.T) {
	for _, dir := range overlays {
		r := render(t, dir)
		for _, hpa := range Of[autoscalingv2.HorizontalPodAutoscaler](r) {
			for _, d := range Of[appsv1.Deployment](r) {
				if hpa.Spec.ScaleTargetRef.Kind == "Deployment" && hpa.Spec.ScaleTargetRef.Name == d.Name &&
					d.Spec.Replicas != nil {
					t.Errorf("%s: Deployment %s sets replicas: %d although HPA %s scales it", dir, d.Name,
						*d.Spec.Replicas, hpa.Name)
				}
			}
		}
	}
}

// TestThreadsMatchCPULimit: a server with a worker pool (--threads) sizes it to its container's CPU limit;
// unset (0) it would take one thread per CPU of the node, whatever the limit.
func TestThreadsMatchCPULimit(t *testing.T) {
	for _, dir := range overlays {
		for _, s := range servers(t, render(t, dir)) {
			if !flagNames(t, s.Binary)["threads"] {
				continue
			}
			limit, ok := s.Container.Resources.Limits[corev1.ResourceCPU]
			if !ok || limit.MilliValue()%1000 != 0 {
				t.Errorf("%s: %s: CPU limit %v is not a whole number of CPUs", dir, s.Deployment.Name, limit.String())
				continue
			}
			want := strconv.FormatInt(limit.MilliValue()/1000, 10)
			if got, ok := s.Value["threads"]; !ok || got != want {
				t.Errorf("%s: %s: --threads=%q, want the CPU limit %s", dir, s.Deployment.Name, got, want)
			}
		}
	}
}
