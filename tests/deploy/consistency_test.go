package deploy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// CLI flags a Job may use before the CLI has them (name -> where they are being added): reported, not
// failed. Empty: every flag in the Jobs is checked against the CLI.
var pendingCLIFlags = map[string]string{}

// Server is one Deployment's container with its effective flags (flagfiles expanded, last value wins).
type Server struct {
	Deployment *appsv1.Deployment
	Container  *corev1.Container
	Binary     string
	Flags      []flagLine
	Value      map[string]string
}

func (s *Server) intFlag(t testing.TB, name string) int {
	t.Helper()
	v, ok := s.Value[name]
	if !ok {
		t.Fatalf("%s: --%s not set in its manifests", s.Deployment.Name, name)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: --%s=%q is not an integer", s.Deployment.Name, name, v)
	}
	return n
}

func configMaps(r *Rendered) map[string]*corev1.ConfigMap {
	out := map[string]*corev1.ConfigMap{}
	for _, cm := range Of[corev1.ConfigMap](r) {
		out[cm.Name] = cm
	}
	return out
}

// mountedFile resolves a file path inside a container to the ConfigMap key mounted there.
func mountedFile(r *Rendered, pod *corev1.PodSpec, c *corev1.Container, file string) (string, error) {
	for _, m := range c.VolumeMounts {
		if path.Dir(file) != m.MountPath {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm, ok := configMaps(r)[v.ConfigMap.Name]
			if !ok {
				return "", fmt.Errorf("ConfigMap %s (volume %s) is not rendered", v.ConfigMap.Name, v.Name)
			}
			data, ok := cm.Data[path.Base(file)]
			if !ok {
				return "", fmt.Errorf("ConfigMap %s has no key %s", cm.Name, path.Base(file))
			}
			return data, nil
		}
	}
	return "", fmt.Errorf("%s is not in a ConfigMap volume of container %s", file, c.Name)
}

// servers returns every Deployment of a render with its effective flags.
func servers(t testing.TB, r *Rendered) []*Server {
	t.Helper()
	var out []*Server
	for _, d := range Of[appsv1.Deployment](r) {
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			s := &Server{Deployment: d, Container: c, Binary: path.Base(c.Command[0]), Value: map[string]string{}}
			for _, arg := range c.Args {
				f, ok := parseFlagArg(arg)
				if !ok {
					t.Errorf("%s %s: argument %q is not --flag=value", r.Dir, d.Name, arg)
					continue
				}
				if f.Name != "flagfile" {
					f.Where = "args"
					s.Flags = append(s.Flags, f)
					continue
				}
				text, err := mountedFile(r, &d.Spec.Template.Spec, c, f.Value)
				if err != nil {
					t.Errorf("%s %s: --flagfile: %v", r.Dir, d.Name, err)
					continue
				}
				lines, err := parseFlagfile(text, f.Value)
				if err != nil {
					t.Errorf("%s %s: %v", r.Dir, d.Name, err)
				}
				s.Flags = append(s.Flags, lines...)
			}
			for _, f := range s.Flags {
				s.Value[f.Name] = f.Value
			}
			out = append(out, s)
		}
	}
	return out
}

func containerPort(c *corev1.Container, name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	return -1
}

func selects(selector map[string]string, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

// Flags, paths, ports, probes, drain timing, references, Services, NetworkPolicy, PDBs and HPAs agree.
func TestConsistency(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			srvs := servers(t, r)
			byBinary := map[string]*Server{}
			for _, s := range srvs {
				byBinary[s.Binary] = s
				checkServer(t, r, s)
			}
			for _, b := range []string{"maas-gateway", "maas-generative", "maas-discriminative"} {
				if byBinary[b] == nil {
					t.Fatalf("no Deployment runs %s", b)
				}
			}
			checkReferences(t, r)
			checkServices(t, r, srvs)
			checkGatewayTargets(t, r, byBinary, dir == "overlays/linkerd" || dir == "overlays/istio")
			checkNetworkPolicy(t, r, byBinary)
			checkDisruptionAndScaling(t, r)
			if dir == "overlays/istio" {
				checkIstioRoutes(t, r)
			}
			checkMeshInjection(t, r, dir)
		})
	}
}

func checkServer(t *testing.T, r *Rendered, s *Server) {
	where := s.Deployment.Name
	known := flagNames(t, s.Binary)
	for _, f := range s.Flags {
		if !known[f.Name] {
			t.Errorf("%s (%s): --%s is not a flag of %s", where, f.Where, f.Name, s.Binary)
		}
		// A file or directory flag must point into a volume (the root filesystem is read-only and empty).
		if strings.HasPrefix(f.Value, "/") {
			inVolume := false
			for _, m := range s.Container.VolumeMounts {
				inVolume = inVolume || strings.HasPrefix(f.Value, strings.TrimSuffix(m.MountPath, "/")+"/")
			}
			if !inVolume {
				t.Errorf("%s (%s): --%s=%s is not inside a mounted volume", where, f.Where, f.Name, f.Value)
			}
		}
	}
	// Ports: --port is the grpc containerPort and every probe's port; --metrics_port the metrics port and
	// the Prometheus annotation.
	port := s.intFlag(t, "port")
	if got := containerPort(s.Container, "grpc"); got != port {
		t.Errorf("%s: containerPort grpc %d != --port %d", where, got, port)
	}
	metrics := s.intFlag(t, "metrics_port")
	if got := containerPort(s.Container, "metrics"); got != metrics {
		t.Errorf("%s: containerPort metrics %d != --metrics_port %d", where, got, metrics)
	}
	ann := s.Deployment.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(metrics) {
		t.Errorf("%s: prometheus.io annotations %v do not scrape --metrics_port %d", where, ann, metrics)
	}
	for name, p := range map[string]*corev1.Probe{"startup": s.Container.StartupProbe,
		"readiness": s.Container.ReadinessProbe, "liveness": s.Container.LivenessProbe} {
		switch {
		case p == nil:
			t.Errorf("%s: no %s probe", where, name)
		case p.GRPC != nil:
			if int(p.GRPC.Port) != port {
				t.Errorf("%s: %s probe port %d != --port %d", where, name, p.GRPC.Port, port)
			}
		case p.TCPSocket != nil:
			// Only where the server speaks TLS (the kubelet's gRPC probe cannot).
			if s.Value["tls_cert_file"] == "" {
				t.Errorf("%s: %s probe is TCP although the server is plaintext: use a gRPC probe", where, name)
			}
			if p.TCPSocket.Port.IntValue() != port {
				t.Errorf("%s: %s probe port %v != --port %d", where, name, p.TCPSocket.Port, port)
			}
		default:
			t.Errorf("%s: %s probe is neither gRPC nor TCP", where, name)
		}
		if p != nil && p.GRPC != nil && s.Value["tls_cert_file"] != "" {
			t.Errorf("%s: %s gRPC probe cannot reach a TLS server (the kubelet probes in plaintext)", where, name)
		}
	}
	// Drain: the pod may live preStop + drain + grace before the kubelet kills it.
	need := 0.0
	if l := s.Container.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Exec != nil {
		cmd := l.PreStop.Exec.Command
		if len(cmd) != 2 || path.Base(cmd[0]) != "sleep" {
			t.Errorf("%s: preStop %v: expected [/bin/sleep N]", where, cmd)
		} else if v, err := strconv.ParseFloat(cmd[1], 64); err == nil {
			need += v
		}
	}
	for flag, scale := range map[string]float64{"drain_delay_ms": 1e-3, "shutdown_grace_ms": 1e-3,
		"shutdown_grace_seconds": 1} {
		if v, ok := s.Value[flag]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Errorf("%s: --%s=%q", where, flag, v)
			}
			need += f * scale
		}
	}
	if need == 0 {
		t.Errorf("%s: no shutdown grace configured", where)
	}
	tgps := s.Deployment.Spec.Template.Spec.TerminationGracePeriodSeconds
	if tgps == nil || float64(*tgps) < need+1 {
		t.Errorf("%s: terminationGracePeriodSeconds %v < preStop + drain + grace (%.1f s) + 1 s", where, tgps, need)
	}
}

// Every ConfigMap, Secret and PersistentVolumeClaim a pod uses exists in the render (Secrets: or is one
// the operator creates).
func checkReferences(t *testing.T, r *Rendered) {
	cms := configMaps(r)
	pvcs := map[string]bool{}
	for _, p := range Of[corev1.PersistentVolumeClaim](r) {
		pvcs[p.Name] = true
	}
	pods := map[string]*corev1.PodSpec{}
	for _, d := range Of[appsv1.Deployment](r) {
		pods["Deployment "+d.Name] = &d.Spec.Template.Spec
	}
	for _, j := range Of[batchv1.Job](r) {
		pods["Job "+j.Name] = &j.Spec.Template.Spec
	}
	for where, pod := range pods {
		if pod.ServiceAccountName != "" {
			found := false
			for _, sa := range Of[corev1.ServiceAccount](r) {
				found = found || sa.Name == pod.ServiceAccountName
			}
			if !found {
				t.Errorf("%s: ServiceAccount %s is not rendered", where, pod.ServiceAccountName)
			}
		}
		for _, v := range pod.Volumes {
			switch {
			case v.ConfigMap != nil && cms[v.ConfigMap.Name] == nil:
				t.Errorf("%s: volume %s: ConfigMap %s is not rendered", where, v.Name, v.ConfigMap.Name)
			case v.Secret != nil && !operatorSecrets[v.Secret.SecretName]:
				t.Errorf("%s: volume %s: Secret %s is neither rendered nor documented", where, v.Name, v.Secret.SecretName)
			case v.PersistentVolumeClaim != nil && !pvcs[v.PersistentVolumeClaim.ClaimName]:
				t.Errorf("%s: volume %s: PVC %s is not rendered", where, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
		for _, c := range pod.Containers {
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil && cms[e.ConfigMapRef.Name] == nil {
					t.Errorf("%s: envFrom ConfigMap %s is not rendered", where, e.ConfigMapRef.Name)
				}
			}
			for _, m := range c.VolumeMounts {
				found := false
				for _, v := range pod.Volumes {
					found = found || v.Name == m.Name
				}
				if !found {
					t.Errorf("%s: volumeMount %s has no volume", where, m.Name)
				}
			}
		}
	}
}

// Every Service selects the pods of a Deployment and targets one of their container ports.
func checkServices(t *testing.T, r *Rendered, srvs []*Server) {
	for _, svc := range Of[corev1.Service](r) {
		var matched []*Server
		for _, s := range srvs {
			if selects(svc.Spec.Selector, s.Deployment.Spec.Template.Labels) {
				matched = append(matched, s)
			}
		}
		if len(matched) == 0 {
			t.Errorf("Service %s: selector %v matches no pod template", svc.Name, svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			for _, s := range matched {
				target := p.TargetPort.IntValue()
				if p.TargetPort.Type == 1 { // named port
					target = containerPort(s.Container, p.TargetPort.StrVal)
				}
				if target != s.intFlag(t, "port") {
					t.Errorf("Service %s port %s: targetPort %v is not %s's --port %d", svc.Name, p.Name,
						p.TargetPort.String(), s.Deployment.Name, s.intFlag(t, "port"))
				}
			}
		}
	}
}

// The gateway's --*_target names a Service that selects that backend on its port: headless without a mesh
// (the gateway balances per pod), ClusterIP with one (the mesh balances per request).
func checkGatewayTargets(t *testing.T, r *Rendered, byBinary map[string]*Server, mesh bool) {
	gw := byBinary["maas-gateway"]
	for flag, backend := range map[string]string{"generative_target": "maas-generative",
		"discriminative_target": "maas-discriminative"} {
		target := gw.Value[flag]
		m := regexp.MustCompile(`^dns:///([a-z0-9-]+)(?:\.[a-z0-9.-]+)?:(\d+)$`).FindStringSubmatch(target)
		if m == nil {
			t.Errorf("gateway --%s=%q: expected dns:///<service>:<port>", flag, target)
			continue
		}
		var svc *corev1.Service
		for _, s := range Of[corev1.Service](r) {
			if s.Name == m[1] {
				svc = s
			}
		}
		if svc == nil {
			t.Errorf("gateway --%s=%s: no Service %s", flag, target, m[1])
			continue
		}
		be := byBinary[backend]
		if !selects(svc.Spec.Selector, be.Deployment.Spec.Template.Labels) {
			t.Errorf("gateway --%s: Service %s does not select %s", flag, svc.Name, backend)
		}
		port, _ := strconv.Atoi(m[2])
		found := false
		for _, p := range svc.Spec.Ports {
			found = found || int(p.Port) == port
		}
		if !found {
			t.Errorf("gateway --%s: Service %s has no port %d", flag, svc.Name, port)
		}
		headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
		if mesh && headless {
			t.Errorf("gateway --%s: Service %s is headless; in a mesh use a ClusterIP Service", flag, svc.Name)
		}
		if !mesh && !headless {
			t.Errorf("gateway --%s: Service %s must be headless so the gateway balances per pod", flag, svc.Name)
		}
	}
}

// Every NetworkPolicy that selects a backend admits the gateway pods on the backend's gRPC port, and
// nothing but the gateway and labelled mesh clients reaches that port. Every binary's metrics port is
// covered by a policy and open only to the monitoring namespace (civetweb has a thread per connection: a
// few idle sockets from anywhere starved the scrapes, the 2026-12-06 observability hunt; the gateway's
// was not covered).
func checkNetworkPolicy(t *testing.T, r *Rendered, byBinary map[string]*Server) {
	for _, binary := range []string{"maas-gateway", "maas-generative", "maas-discriminative"} {
		s := byBinary[binary]
		metrics := s.intFlag(t, "metrics_port")
		policies := policiesSelecting(t, r, s.Deployment.Spec.Template.Labels)
		for _, np := range policies {
			for _, rule := range np.Spec.Ingress {
				if !rulePort(rule, metrics) {
					continue
				}
				if len(rule.From) == 0 {
					t.Errorf("NetworkPolicy %s: %s's metrics port %d is open to everyone", np.Name, binary, metrics)
				}
				for _, peer := range rule.From {
					ns := peer.NamespaceSelector
					if peer.PodSelector != nil || peer.IPBlock != nil || ns == nil ||
						ns.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
						t.Errorf("NetworkPolicy %s: %s's metrics port %d is open to %+v, not only the monitoring namespace",
							np.Name, binary, metrics, peer)
					}
				}
			}
		}
		if len(policies) == 0 {
			t.Errorf("no NetworkPolicy covers %s (its metrics port %d is open to every pod)", binary, metrics)
		}
	}
	gwLabels := byBinary["maas-gateway"].Deployment.Spec.Template.Labels
	for _, backend := range []string{"maas-generative", "maas-discriminative"} {
		be := byBinary[backend]
		port := be.intFlag(t, "port")
		policies := policiesSelecting(t, r, be.Deployment.Spec.Template.Labels)
		for _, np := range policies {
			admitsGateway := false
			for _, rule := range np.Spec.Ingress {
				if !rulePort(rule, port) {
					continue
				}
				for _, peer := range rule.From {
					if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil {
						t.Errorf("NetworkPolicy %s: port %d is open to %+v; only pods of the namespace may reach it",
							np.Name, port, peer)
						continue
					}
					ps, err := metav1LabelSelector(peer.PodSelector)
					if err != nil || ps.Empty() {
						t.Errorf("NetworkPolicy %s: port %d is open to every pod", np.Name, port)
						continue
					}
					if ps.Matches(labels.Set(gwLabels)) {
						admitsGateway = true
					}
				}
			}
			if !admitsGateway {
				t.Errorf("NetworkPolicy %s does not admit the gateway to %s:%d", np.Name, backend, port)
			}
		}
		if len(policies) == 0 {
			t.Errorf("no NetworkPolicy protects %s", backend)
		}
	}
}

// The rendered NetworkPolicies whose pod selector matches podLabels.
func policiesSelecting(t *testing.T, r *Rendered, podLabels map[string]string) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, np := range Of[networkingv1.NetworkPolicy](r) {
		sel, err := metav1LabelSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatalf("NetworkPolicy %s: %v", np.Name, err)
		}
		if sel.Matches(labels.Set(podLabels)) {
			out = append(out, np)
		}
	}
	return out
}

func rulePort(rule networkingv1.NetworkPolicyIngressRule, port int) bool {
	if len(rule.Ports) == 0 {
		return true
	}
	for _, p := range rule.Ports {
		if p.Port != nil && p.Port.IntValue() == port {
			return true
		}
	}
	return false
}

func checkDisruptionAndScaling(t *testing.T, r *Rendered) {
	deployments := Of[appsv1.Deployment](r)
	for _, pdb := range Of[policyv1.PodDisruptionBudget](r) {
		sel, err := metav1LabelSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatalf("PDB %s: %v", pdb.Name, err)
		}
		n := 0
		for _, d := range deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("PodDisruptionBudget %s selects %d Deployments, want 1", pdb.Name, n)
		}
	}
	for _, hpa := range Of[autoscalingv2.HorizontalPodAutoscaler](r) {
		found := false
		for _, d := range deployments {
			found = found || (hpa.Spec.ScaleTargetRef.Kind == "Deployment" && hpa.Spec.ScaleTargetRef.Name == d.Name)
		}
		if !found {
			t.Errorf("HPA %s scales %s/%s, which is not rendered", hpa.Name, hpa.Spec.ScaleTargetRef.Kind,
				hpa.Spec.ScaleTargetRef.Name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
			t.Errorf("HPA %s: minReplicas < 2 leaves no replica during a disruption", hpa.Name)
		}
	}
}

// protoServices reads the gRPC services and their methods from proto/.
func protoServices(t *testing.T) map[string][]string {
	out := map[string][]string{}
	files, _ := filepath.Glob(filepath.Join(sourceDir(t), "proto", "maas", "*", "v1", "*.proto"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pkg := regexp.MustCompile(`(?m)^package ([\w.]+);`).FindStringSubmatch(string(b))
		for _, svc := range regexp.MustCompile(`(?s)service (\w+) \{(.*?)\n\}`).FindAllStringSubmatch(string(b), -1) {
			name := pkg[1] + "." + svc[1]
			for _, m := range regexp.MustCompile(`rpc (\w+)\(`).FindAllStringSubmatch(svc[2], -1) {
				out[name] = append(out[name], m[1])
			}
		}
	}
	if len(out) < 3 {
		t.Fatalf("read %d gRPC services from proto/", len(out))
	}
	return out
}

// State-changing methods: never retried by the mesh.
var nonIdempotent = map[string]bool{"CreateModel": true, "FitModel": true, "Train": true, "DeleteModel": true}

// Every VirtualService route names real methods, routes every method of the service explicitly, retries
// only idempotent methods and only on UNAVAILABLE, and sends to a rendered Service port.
func checkIstioRoutes(t *testing.T, r *Rendered) {
	services := protoServices(t)
	svcPorts := map[string]map[int32]bool{}
	for _, s := range Of[corev1.Service](r) {
		svcPorts[s.Name] = map[int32]bool{}
		for _, p := range s.Spec.Ports {
			svcPorts[s.Name][p.Port] = true
		}
	}
	for _, dr := range Of[DestinationRule](r) {
		if svcPorts[dr.Spec.Host] == nil {
			t.Errorf("DestinationRule %s: host %s is not a rendered Service", dr.Name, dr.Spec.Host)
		}
	}
	vss := Of[VirtualService](r)
	if len(vss) == 0 {
		t.Fatal("no VirtualService rendered")
	}
	for _, vs := range vss {
		routed := map[string]bool{}
		var service string
		for _, route := range vs.Spec.HTTP {
			for _, d := range route.Route {
				if d.Destination.Port == nil || !svcPorts[d.Destination.Host][int32(d.Destination.Port.Number)] {
					t.Errorf("VirtualService %s route %s: destination %s:%v is not a rendered Service port",
						vs.Name, route.Name, d.Destination.Host, d.Destination.Port)
				}
			}
			retries := route.Retries != nil && route.Retries.Attempts > 0
			if retries && route.Retries.RetryOn != "unavailable" {
				t.Errorf("VirtualService %s route %s: retryOn %q, want unavailable only", vs.Name, route.Name,
					route.Retries.RetryOn)
			}
			if len(route.Match) == 0 && retries {
				t.Errorf("VirtualService %s: catch-all route %s retries", vs.Name, route.Name)
			}
			for _, m := range route.Match {
				if m.URI == nil || m.URI.Exact == "" {
					t.Errorf("VirtualService %s route %s: match by exact method path", vs.Name, route.Name)
					continue
				}
				parts := strings.Split(strings.TrimPrefix(m.URI.Exact, "/"), "/")
				methods, ok := services[parts[0]]
				if len(parts) != 2 || !ok || !contains(methods, parts[1]) {
					t.Errorf("VirtualService %s: %s is not a method in proto/", vs.Name, m.URI.Exact)
					continue
				}
				if service != "" && service != parts[0] {
					t.Errorf("VirtualService %s routes two services", vs.Name)
				}
				service = parts[0]
				routed[parts[1]] = true
				if retries && nonIdempotent[parts[1]] {
					t.Errorf("VirtualService %s route %s retries the state-changing %s", vs.Name, route.Name, parts[1])
				}
			}
		}
		for _, m := range services[service] {
			if !routed[m] {
				t.Errorf("VirtualService %s: %s/%s has no route of its own (falls into the catch-all)", vs.Name,
					service, m)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The mesh overlays inject their proxy into every pod (Linkerd: annotation linkerd.io/inject, Istio: label
// sidecar.istio.io/inject) and the namespace, and the others inject nothing.
func checkMeshInjection(t *testing.T, r *Rendered, dir string) {
	wantLinkerd, wantIstio := dir == "overlays/linkerd", dir == "overlays/istio"
	for _, d := range Of[appsv1.Deployment](r) {
		ann, lab := d.Spec.Template.Annotations, d.Spec.Template.Labels
		if got := ann["linkerd.io/inject"] == "enabled"; got != wantLinkerd {
			t.Errorf("%s: linkerd.io/inject=%q", d.Name, ann["linkerd.io/inject"])
		}
		if got := lab["sidecar.istio.io/inject"] == "true"; got != wantIstio {
			t.Errorf("%s: label sidecar.istio.io/inject=%q", d.Name, lab["sidecar.istio.io/inject"])
		}
		if v, ok := ann["sidecar.istio.io/inject"]; ok {
			t.Errorf("%s: sidecar.istio.io/inject=%q as an annotation: Istio reads the label", d.Name, v)
		}
	}
	for _, ns := range Of[corev1.Namespace](r) {
		if wantLinkerd && ns.Annotations["linkerd.io/inject"] != "enabled" {
			t.Errorf("Namespace %s: not annotated linkerd.io/inject: enabled", ns.Name)
		}
		if wantIstio && ns.Labels["istio-injection"] != "enabled" {
			t.Errorf("Namespace %s: not labelled istio-injection: enabled", ns.Name)
		}
	}
	if (wantLinkerd || wantIstio) && len(Of[corev1.Namespace](r)) != 1 {
		t.Errorf("the mesh overlay must render its Namespace (the Jobs applied there are injected too)")
	}
}
