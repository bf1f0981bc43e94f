package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
