package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// running is one started binary.
type running struct {
	Port   int
	cmd    *exec.Cmd
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a maas binary and waits for its ready line "<name>: serving ... on port N" (port 0 = the OS
// picks one). SIGTERM at the end of the test.
func start(t *testing.T, binary string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir(t), binary), args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", binary, err)
	}
	r := &running{cmd: cmd, stderr: &syncBuffer{}}
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		re := regexp.MustCompile(`: serving .* on port (\d+)`)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(r.stderr, line)
			if m := re.FindStringSubmatch(line); m != nil {
				p, _ := strconv.Atoi(m[1])
				ready <- p
			}
		}
		io.Copy(r.stderr, pipe)
		close(ready)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	select {
	case p, ok := <-ready:
		if !ok {
			t.Fatalf("%s %v exited before serving:\n%s", binary, args, r.stderr.String())
		}
		r.Port = p
	case <-time.After(60 * time.Second):
		t.Fatalf("%s %v: no ready line within 60 s:\n%s", binary, args, r.stderr.String())
	}
	return r
}

// stagedArgs turns a manifest container's args into a local command line: ConfigMap-mounted flagfiles are
// written to dir, then overrides follow (a later flag wins over the flagfile's value).
func stagedArgs(t *testing.T, r *Rendered, s *Server, dir string, overrides ...string) []string {
	t.Helper()
	var args []string
	for _, a := range s.Container.Args {
		f, _ := parseFlagArg(a)
		if f.Name != "flagfile" {
			args = append(args, a)
			continue
		}
		text, err := mountedFile(r, &s.Deployment.Spec.Template.Spec, s.Container, f.Value)
		if err != nil {
			t.Fatal(err)
		}
		local := filepath.Join(dir, s.Deployment.Name+"-"+path.Base(f.Value))
		if err := os.WriteFile(local, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--flagfile="+local)
	}
	return append(args, overrides...)
}

// localOverrides replaces what only exists in a pod: the listening address and ports, and every absolute
// path (the model volume, the Secret's token file) by a place in dir.
func localOverrides(t *testing.T, s *Server, dir string) []string {
	t.Helper()
	out := []string{"--host=127.0.0.1", "--port=0", "--metrics_port=0"}
	if _, ok := s.Value["drain_delay_ms"]; ok {
		out = append(out, "--drain_delay_ms=0") // the pod's drain wait only slows the test's shutdown
	}
	if _, ok := s.Value["health_check_interval_ms"]; ok {
		out = append(out, "--health_check_interval_ms=200") // SERVING sooner; the pods keep theirs
	}
	for _, name := range sortedKeys(s.Value) {
		v := s.Value[name]
		if !strings.HasPrefix(v, "/") {
			continue
		}
		switch name {
		case "model_dir":
			out = append(out, "--model_dir="+filepath.Join(dir, s.Deployment.Name+"-models"))
		case "auth_token_file":
			token := filepath.Join(dir, "token")
			if err := os.WriteFile(token, []byte("test-token\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out = append(out, "--auth_token_file="+token)
		default:
			t.Fatalf("%s: --%s=%s: no local stand-in (teach localOverrides)", s.Deployment.Name, name, v)
		}
	}
	return out
}

// stack starts generative, discriminative and the gateway of a render with the manifests' own flagfiles.
func stack(t *testing.T, r *Rendered, extra map[string][]string) map[string]*running {
	t.Helper()
	dir := t.TempDir()
	byBinary := map[string]*Server{}
	for _, s := range servers(t, r) {
		byBinary[s.Binary] = s
	}
	up := map[string]*running{}
	for _, b := range []string{"maas-generative", "maas-discriminative"} {
		s := byBinary[b]
		up[b] = start(t, b, stagedArgs(t, r, s, dir, append(localOverrides(t, s, dir), extra[b]...)...)...)
	}
	gw := byBinary["maas-gateway"]
	overrides := append(localOverrides(t, gw, dir),
		fmt.Sprintf("--generative_target=ipv4:127.0.0.1:%d", up["maas-generative"].Port),
		fmt.Sprintf("--discriminative_target=ipv4:127.0.0.1:%d", up["maas-discriminative"].Port))
	up["maas-gateway"] = start(t, "maas-gateway", stagedArgs(t, r, gw, dir, append(overrides, extra["maas-gateway"]...)...)...)
	// Runs first (cleanups are LIFO): SIGTERM to all three at once, so their drains overlap.
	t.Cleanup(func() {
		for _, p := range up {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	})
	return up
}

func healthStatus(port int, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	return resp.Status, nil
}

// The real binaries start with each overlay's rendered flagfiles (so every value parses, not only every
// name), and every gRPC probe's service name is one the server registers and reports SERVING.
func TestServersAnswerTheirProbes(t *testing.T) {
	for _, dir := range []string{"overlays/dev", "overlays/istio"} {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			up := stack(t, r, nil)
			for _, s := range servers(t, r) {
				for name, p := range map[string]*corev1.Probe{"startup": s.Container.StartupProbe,
					"readiness": s.Container.ReadinessProbe, "liveness": s.Container.LivenessProbe} {
					if p == nil || p.GRPC == nil {
						continue
					}
					service := ""
					if p.GRPC.Service != nil {
						service = *p.GRPC.Service
					}
					// The gateway's "" turns SERVING once its health monitor has seen the backends.
					deadline := time.Now().Add(30 * time.Second)
					for {
						st, err := healthStatus(up[s.Binary].Port, service)
						if err == nil && st == healthpb.HealthCheckResponse_SERVING {
							break
						}
						if time.Now().After(deadline) {
							t.Errorf("%s %s probe: Health/Check(%q) on %s = %v, %v", s.Deployment.Name, name, service,
								s.Binary, st, err)
							break
						}
						time.Sleep(200 * time.Millisecond)
					}
				}
			}
		})
	}
}

// The sharded Sample Job on loopback: the real servers, the Job's own scripts and environment from the
// rendered manifests (sizes scaled down), every completion index, the merge step; the merged rows equal
// one big `maas sample` call byte for byte.
func TestShardedSampleJob(t *testing.T) {
	r := render(t, "overlays/dev")
	// The demo model is created by deploy/local/demo.py, which sends no token: no --auth_token_file here.
	noAuth := []string{"--auth_token_file="}
	up := stack(t, r, map[string][]string{"maas-generative": noAuth, "maas-discriminative": noAuth})
	gateway := fmt.Sprintf("127.0.0.1:%d", up["maas-gateway"].Port)
	demo := exec.Command(env(t, "MAAS_PYTHON"), filepath.Join(sourceDir(t), "deploy", "local", "demo.py"),
		"--targets", gateway, "--gateway", gateway,
		"--corpus", filepath.Join(sourceDir(t), "deploy", "local", "demo_corpus.tsv"))
	demo.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(env(t, "MAAS_BUILD_DIR"), "python"))
	if out, err := demo.CombinedOutput(); err != nil {
		t.Fatalf("demo.py: %v\n%s", err, out)
	}

	jobs := render(t, "jobs/sample")
	shards := job(t, jobs, "maas-sample-shards")
	merge := job(t, jobs, "maas-sample-merge")
	work := t.TempDir()
	const total, shard = 100000, 30000 // 4 indices, the last one short
	overrides := map[string]string{
		"MAAS_TARGET":   gateway,
		"DATA_DIR":      filepath.Join(work, "data"),
		"TOTAL_SAMPLES": strconv.Itoa(total),
		"SHARD_SAMPLES": strconv.Itoa(shard),
		"PATH":          binDir(t) + ":" + os.Getenv("PATH"),
		"TMPDIR":        work,
	}
	indices := (total + shard - 1) / shard
	for i := 0; i <= indices; i++ { // one index past the end: must do nothing
		runJobContainer(t, jobs, shards, work, overrides, map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(i)})
	}
	runJobContainer(t, jobs, merge, work, overrides, nil)

	envs := jobEnv(t, jobs, &shards.Spec.Template.Spec.Containers[0])
	outDir := filepath.Join(work, "data", envs["RUN"])
	merged, err := os.ReadFile(filepath.Join(outDir, "samples.csv"))
	if err != nil {
		t.Fatal(err)
	}
	big := exec.Command(filepath.Join(binDir(t), "maas"), "--target="+gateway, "--timeout=0", "sample",
		"--model="+envs["MODEL"], "--model_version="+envs["MODEL_VERSION"], "--seed="+envs["SEED"],
		"--num_samples="+strconv.Itoa(total))
	out, err := big.Output()
	if err != nil {
		t.Fatalf("one big maas sample: %v", err)
	}
	var rows bytes.Buffer
	for _, line := range bytes.SplitAfter(out, []byte("\n")) {
		if len(line) > 0 && line[0] != '#' {
			rows.Write(line)
		}
	}
	if n := bytes.Count(rows.Bytes(), []byte("\n")); n != total {
		t.Fatalf("the big call returned %d rows, want %d", n, total)
	}
	if !bytes.Equal(merged, rows.Bytes()) {
		t.Fatalf("merged shards (%d bytes) differ from one big call (%d bytes)", len(merged), rows.Len())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(outDir, "*.tmp")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	// The merge refuses an incomplete run instead of writing a short result.
	os.Remove(filepath.Join(outDir, "shard-00002.csv"))
	os.Remove(filepath.Join(outDir, "samples.csv"))
	if err := jobCommand(t, jobs, merge, work, overrides, map[string]string{"MERGE_WAIT_SECONDS": "0"}).Run(); err == nil {
		t.Errorf("merge succeeded with shard 2 missing")
	}
	if _, err := os.Stat(filepath.Join(outDir, "samples.csv")); err == nil {
		t.Errorf("merge wrote samples.csv with shard 2 missing")
	}
}

// The sharded estimate Job on loopback: a gaussian_mixture fitted through the CLI, the Job's own scripts
// and environment (sizes scaled down, PRIOR so that every weight is random), every completion index, the
// merge step; each merged row (estimate and mergeable statistics) equals the same row of one big call
// exactly, because --row_offset gives global row r the same weights whichever shard computes it.
func TestShardedEstimateJob(t *testing.T) {
	r := render(t, "overlays/dev")
	noAuth := []string{"--auth_token_file="}
	up := stack(t, r, map[string][]string{"maas-generative": noAuth, "maas-discriminative": noAuth})
	gateway := fmt.Sprintf("127.0.0.1:%d", up["maas-gateway"].Port)
	maas := filepath.Join(binDir(t), "maas")

	jobs := render(t, "jobs/estimate")
	shards := job(t, jobs, "maas-estimate-shards")
	merge := job(t, jobs, "maas-estimate-merge")
	envs := jobEnv(t, jobs, &shards.Spec.Template.Spec.Containers[0])
	data := filepath.Join(sourceDir(t), "deploy", "local", "demo_mixture.csv")
	fit := exec.Command(maas, "--target="+gateway, "fit", "--name="+envs["MODEL"], "--family=gaussian_mixture",
		"--n_components=2", "--data="+data, "--seed=1")
	if out, err := fit.CombinedOutput(); err != nil {
		t.Fatalf("maas fit: %v\n%s", err, out)
	}

	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	// The input: the demo rows without the comment line, as the Job reads $DATA_DIR/$INPUT.
	raw, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	var input bytes.Buffer
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 && line[0] != '#' {
			input.Write(line)
		}
	}
	total := bytes.Count(input.Bytes(), []byte("\n"))
	const shard = 30 // 100 rows: 4 indices, the last one short
	inputPath := filepath.Join(dataDir, envs["INPUT"])
	if err := os.MkdirAll(filepath.Dir(inputPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inputPath, input.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	overrides := map[string]string{
		"MAAS_TARGET":   gateway,
		"DATA_DIR":      dataDir,
		"TOTAL_ROWS":    strconv.Itoa(total),
		"SHARD_ROWS":    strconv.Itoa(shard),
		"ESTIMATOR":     "prior",
		"NUM_SAMPLES":   "300",
		"MODEL_VERSION": "1",
		"PATH":          binDir(t) + ":" + os.Getenv("PATH"),
		"TMPDIR":        work,
	}
	indices := (total + shard - 1) / shard
	for i := 0; i <= indices; i++ { // one index past the end: must do nothing
		runJobContainer(t, jobs, shards, work, overrides, map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(i)})
	}
	runJobContainer(t, jobs, merge, work, overrides, nil)

	type row struct {
		Row           uint64
		LogLikelihood float64 `json:"log_likelihood"`
		StandardError float64 `json:"standard_error"`
		Ess           float64
		NumSamples    uint64 `json:"num_samples"`
		Statistics    struct {
			Count    uint64
			LogSumW  float64 `json:"log_sum_w"`
			LogSumW2 float64 `json:"log_sum_w2"`
		}
	}
	type document struct {
		Estimator string
		Seed      uint64
		Rows      []row
	}
	merged, err := os.ReadFile(filepath.Join(dataDir, envs["RUN"], "estimates.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var fromShards []row
	for _, line := range bytes.Split(bytes.TrimSpace(merged), []byte("\n")) {
		var d document
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatalf("merged line %q: %v", line, err)
		}
		if d.Estimator != "PRIOR" || strconv.FormatUint(d.Seed, 10) != envs["SEED"] {
			t.Fatalf("shard estimated with %s seed %d, want PRIOR seed %s", d.Estimator, d.Seed, envs["SEED"])
		}
		fromShards = append(fromShards, d.Rows...)
	}
	big := exec.Command(maas, "--json", "--target="+gateway, "--timeout=0", "estimate", "--model="+envs["MODEL"],
		"--model_version=1", "--x_file="+inputPath, "--estimator=prior", "--num_samples=300", "--seed="+envs["SEED"])
	out, err := big.Output()
	if err != nil {
		t.Fatalf("one big maas estimate: %v", err)
	}
	var whole document
	if err := json.Unmarshal(out, &whole); err != nil {
		t.Fatal(err)
	}
	if len(whole.Rows) != total || len(fromShards) != total {
		t.Fatalf("rows: one call %d, shards %d, want %d", len(whole.Rows), len(fromShards), total)
	}
	distinct := map[float64]bool{}
	for i := range whole.Rows {
		if fromShards[i] != whole.Rows[i] {
			t.Fatalf("row %d: shards %+v, one call %+v", i, fromShards[i], whole.Rows[i])
		}
		distinct[whole.Rows[i].StandardError] = true
	}
	if len(distinct) < total/2 { // PRIOR weights are random: a constant SE would mean no Monte Carlo ran
		t.Fatalf("only %d distinct standard errors over %d rows", len(distinct), total)
	}
}

func job(t *testing.T, r *Rendered, name string) *batchv1.Job {
	for _, j := range Of[batchv1.Job](r) {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("%s: no Job %s", r.Dir, name)
	return nil
}

// jobEnv resolves a container's environment as the kubelet would: envFrom ConfigMaps, then env.
func jobEnv(t *testing.T, r *Rendered, c *corev1.Container) map[string]string {
	out := map[string]string{}
	cms := configMaps(r)
	for _, e := range c.EnvFrom {
		if e.ConfigMapRef == nil || cms[e.ConfigMapRef.Name] == nil {
			t.Fatalf("container %s: envFrom %+v does not resolve", c.Name, e)
		}
		for k, v := range cms[e.ConfigMapRef.Name].Data {
			out[e.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Fatalf("container %s: env %s uses valueFrom (teach jobEnv)", c.Name, e.Name)
		}
		out[e.Name] = e.Value
	}
	return out
}

// jobCommand builds the Job container's exact command: ConfigMap-mounted files are staged in work, the
// environment is the manifest's with the given overrides.
func jobCommand(t *testing.T, r *Rendered, j *batchv1.Job, work string, overrides ...map[string]string) *exec.Cmd {
	t.Helper()
	pod := &j.Spec.Template.Spec
	c := &pod.Containers[0]
	var argv []string
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		if text, err := mountedFile(r, pod, c, a); err == nil {
			local := filepath.Join(work, j.Name+"-"+path.Base(a))
			if err := os.WriteFile(local, []byte(text), 0o755); err != nil {
				t.Fatal(err)
			}
			a = local
		}
		argv = append(argv, a)
	}
	envs := jobEnv(t, r, c)
	for _, o := range overrides {
		for k, v := range o {
			envs[k] = v
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = nil
	for _, k := range sortedKeys(envs) {
		cmd.Env = append(cmd.Env, k+"="+envs[k])
	}
	return cmd
}

func runJobContainer(t *testing.T, r *Rendered, j *batchv1.Job, work string, overrides ...map[string]string) {
	t.Helper()
	cmd := jobCommand(t, r, j, work, overrides...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", j.Name, cmd.Args, err, out)
	}
}
