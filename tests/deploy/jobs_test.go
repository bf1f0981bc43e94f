package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
)

// The Job examples: Indexed shard Jobs whose completions cover exactly the configured range, scripts that
// parse, CLI flags the `maas` binary accepts, a gateway target that is the gateway Service, and a shard
// volume shared by the shard and merge Jobs.
func TestJobs(t *testing.T) {
	cli := flagNames(t, "maas")
	base := render(t, "overlays/dev")
	gatewayPort := 0
	for _, s := range servers(t, base) {
		if s.Binary == "maas-gateway" {
			gatewayPort = s.intFlag(t, "port")
		}
	}
	sizes := map[string][2]string{"jobs/sample": {"TOTAL_SAMPLES", "SHARD_SAMPLES"},
		"jobs/estimate": {"TOTAL_ROWS", "SHARD_ROWS"}}
	for _, dir := range jobDirs {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			jobs := Of[batchv1.Job](r)
			if len(jobs) != 2 {
				t.Fatalf("want a shard Job and a merge Job, got %d Jobs", len(jobs))
			}
			work := t.TempDir()
			for _, j := range jobs {
				c := &j.Spec.Template.Spec.Containers[0]
				envs := jobEnv(t, r, c)
				if want := "maas-gateway:" + strconv.Itoa(gatewayPort); envs["MAAS_TARGET"] != want {
					t.Errorf("%s: MAAS_TARGET=%q, want the gateway Service %s", j.Name, envs["MAAS_TARGET"], want)
				}
				mountsData := false
				for _, v := range j.Spec.Template.Spec.Volumes {
					mountsData = mountsData || (v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "maas-job-data")
				}
				for _, m := range c.VolumeMounts {
					if m.Name == "data" && m.MountPath != envs["DATA_DIR"] {
						t.Errorf("%s: data volume at %s but DATA_DIR=%s", j.Name, m.MountPath, envs["DATA_DIR"])
					}
				}
				if !mountsData {
					t.Errorf("%s: does not mount the PVC maas-job-data", j.Name)
				}
				// The script the Job runs parses, and every flag it passes to maas is one the CLI accepts.
				cmd := jobCommand(t, r, j, work)
				script := cmd.Args[len(cmd.Args)-1]
				if out, err := exec.Command("/bin/sh", "-n", script).CombinedOutput(); err != nil {
					t.Errorf("%s: sh -n %s: %v\n%s", j.Name, filepath.Base(script), err, out)
				}
				text, _ := os.ReadFile(script)
				for _, m := range regexp.MustCompile(`--([a-z][a-z0-9_]*)=`).FindAllStringSubmatch(string(text), -1) {
					if cli[m[1]] {
						continue
					}
					if branch, ok := pendingCLIFlags[m[1]]; ok {
						t.Logf("%s: --%s is not in this build's maas CLI yet (added on branch %s)", j.Name, m[1], branch)
						continue
					}
					t.Errorf("%s: maas --%s is not a flag of the CLI", j.Name, m[1])
				}
				if j.Spec.CompletionMode == nil || *j.Spec.CompletionMode != batchv1.IndexedCompletion {
					continue
				}
				// completions = ceil(total / shard): every index has work, and the range is covered.
				total, err1 := strconv.Atoi(envs[sizes[dir][0]])
				shard, err2 := strconv.Atoi(envs[sizes[dir][1]])
				if err1 != nil || err2 != nil || shard <= 0 {
					t.Fatalf("%s: %s / %s not positive integers", j.Name, sizes[dir][0], sizes[dir][1])
				}
				if want := int32((total + shard - 1) / shard); j.Spec.Completions == nil || *j.Spec.Completions != want {
					t.Errorf("%s: completions %v, want ceil(%d / %d) = %d", j.Name, j.Spec.Completions, total, shard, want)
				}
				if j.Spec.BackoffLimitPerIndex == nil {
					t.Errorf("%s: set backoffLimitPerIndex so a failed shard is retried on its own", j.Name)
				}
			}
		})
	}
}

// TestJobsPassTLSOptions: the shard scripts reach a TLS gateway (overlays/tls) when told to:
// MAAS_TLS_CA_FILE (and MAAS_TLS_CERT_FILE + MAAS_TLS_KEY_FILE for mutual TLS) become the CLI's global
// --tls_ca_file (--tls_cert_file, --tls_key_file), and nothing TLS is passed when they are unset. Runs each
// shard script with a stand-in `maas` that records its arguments.
func TestJobsPassTLSOptions(t *testing.T) {
	shardJobs := map[string]string{"jobs/sample": "maas-sample-shards", "jobs/estimate": "maas-estimate-shards"}
	commands := map[string]string{"jobs/sample": "sample", "jobs/estimate": "estimate"}
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"plaintext", map[string]string{}, nil},
		{"tls", map[string]string{"MAAS_TLS_CA_FILE": "/etc/maas/tls/ca.crt"},
			[]string{"--tls_ca_file=/etc/maas/tls/ca.crt"}},
		{"mtls", map[string]string{"MAAS_TLS_CA_FILE": "/etc/maas/tls/ca.crt",
			"MAAS_TLS_CERT_FILE": "/etc/maas/tls/tls.crt", "MAAS_TLS_KEY_FILE": "/etc/maas/tls/tls.key"},
			[]string{"--tls_ca_file=/etc/maas/tls/ca.crt", "--tls_cert_file=/etc/maas/tls/tls.crt",
				"--tls_key_file=/etc/maas/tls/tls.key"}},
	}
	for _, dir := range jobDirs {
		r := render(t, dir)
		shards := job(t, r, shardJobs[dir])
		for _, c := range cases {
			t.Run(dir+"/"+c.name, func(t *testing.T) {
				work := t.TempDir()
				bin := filepath.Join(work, "bin")
				argsFile := filepath.Join(work, "args")
				if err := os.MkdirAll(bin, 0o755); err != nil {
					t.Fatal(err)
				}
				fake := "#!/bin/sh\nprintf '%s\\n' \"$@\" >" + strconv.Quote(argsFile) + "\necho '# stand-in'\n"
				if err := os.WriteFile(filepath.Join(bin, "maas"), []byte(fake), 0o755); err != nil {
					t.Fatal(err)
				}
				data := filepath.Join(work, "data")
				if err := os.MkdirAll(filepath.Join(data, "inputs"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(data, "inputs", "rows.csv"), []byte("1,2\n3,4\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				env := map[string]string{"DATA_DIR": data, "INPUT": "inputs/rows.csv", "TOTAL_ROWS": "2",
					"SHARD_ROWS": "2", "TOTAL_SAMPLES": "2", "SHARD_SAMPLES": "2", "JOB_COMPLETION_INDEX": "0",
					"TMPDIR": work, "PATH": bin + ":" + os.Getenv("PATH")}
				for k, v := range c.env {
					env[k] = v
				}
				runJobContainer(t, r, shards, work, env)
				raw, err := os.ReadFile(argsFile)
				if err != nil {
					t.Fatalf("the shard script did not run maas: %v", err)
				}
				args := strings.Split(strings.TrimSpace(string(raw)), "\n")
				command := -1
				var tls []string
				for i, a := range args {
					if a == commands[dir] && command < 0 {
						command = i
					}
					if strings.HasPrefix(a, "--tls_") {
						tls = append(tls, a)
						if command >= 0 {
							t.Errorf("%s: %s comes after the command %q: the CLI's global flags go before it", dir, a,
								commands[dir])
						}
					}
				}
				if strings.Join(tls, " ") != strings.Join(c.want, " ") {
					t.Errorf("%s with %v: maas got TLS flags %q, want %q (all args: %q)", dir, c.env, tls, c.want, args)
				}
			})
		}
	}
}
