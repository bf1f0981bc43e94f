package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Packages debian:12-slim already has that the programs load (the runtime stage does not list them).
var slimBasePackages = map[string]bool{"libc6": true, "libgcc-s1": true, "libstdc++6": true, "zlib1g": true}

// The sanitizer runtimes a `make sanitize` build links (the Dockerfile's build stage never uses
// -fsanitize): not libraries the image's programs load.
var sanitizerPackages = map[string]bool{"libasan8": true, "libubsan1": true, "liblsan0": true, "libtsan2": true}

// The programs the image ships (the build stage's for loop) and where.
const imageBinDir = "/usr/local/bin"

type dockerfile struct {
	lines   []string // logical instructions (continuations joined)
	stages  []string
	runtime []string // packages between BEGIN/END runtime-packages
}

func readDockerfile(t *testing.T) *dockerfile {
	b, err := os.ReadFile(filepath.Join(sourceDir(t), "deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerfile{}
	var cur strings.Builder
	inRuntime := false
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "# BEGIN runtime-packages":
			inRuntime = true
		case trimmed == "# END runtime-packages":
			inRuntime = false
		}
		if strings.HasPrefix(trimmed, "#") || trimmed == "" {
			continue
		}
		if inRuntime {
			for _, w := range strings.Fields(strings.TrimSuffix(trimmed, "\\")) {
				if regexp.MustCompile(`^lib[a-z0-9.+-]+$`).MatchString(w) {
					d.runtime = append(d.runtime, w)
				}
			}
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		d.lines = append(d.lines, cur.String())
		cur.Reset()
	}
	for _, l := range d.lines {
		if m := regexp.MustCompile(`(?i)^FROM\s+\S+\s+AS\s+(\S+)`).FindStringSubmatch(l); m != nil {
			d.stages = append(d.stages, m[1])
		}
	}
	return d
}

// The Dockerfile's stages, copied paths, targets, user, ports and labels agree with the repository and
// the manifests.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	src := sourceDir(t)
	ignore := dockerignore(t)
	seenStages := map[string]bool{}
	var exposed []int
	var user string
	labels := map[string]bool{}
	for _, l := range d.lines {
		fields := strings.Fields(l)
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			if m := regexp.MustCompile(`(?i)\sAS\s+(\S+)`).FindStringSubmatch(l); m != nil {
				seenStages[m[1]] = true
			}
		case "COPY":
			from := ""
			var args []string
			for _, f := range fields[1:] {
				if strings.HasPrefix(f, "--from=") {
					from = strings.TrimPrefix(f, "--from=")
				} else if !strings.HasPrefix(f, "--") {
					args = append(args, f)
				}
			}
			if from != "" {
				if !seenStages[from] {
					t.Errorf("COPY --from=%s: no earlier stage of that name (stages: %v)", from, d.stages)
				}
				continue
			}
			for _, p := range args[:len(args)-1] {
				if _, err := os.Stat(filepath.Join(src, p)); err != nil {
					t.Errorf("COPY %s: not in the repository", p)
				}
				if ignore(p) {
					t.Errorf("COPY %s: excluded by .dockerignore", p)
				}
			}
		case "EXPOSE":
			for _, p := range fields[1:] {
				n, _ := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				exposed = append(exposed, n)
			}
		case "USER":
			user = fields[1]
		case "LABEL":
			for _, m := range regexp.MustCompile(`(org\.opencontainers\.image\.[a-z.]+)=`).FindAllStringSubmatch(l, -1) {
				labels[m[1]] = true
			}
		case "HEALTHCHECK":
			t.Errorf("HEALTHCHECK: Kubernetes ignores it; the pods' gRPC probes do the checking")
		}
	}
	for _, want := range []string{"title", "description", "version", "revision", "created", "base.name"} {
		if !labels["org.opencontainers.image."+want] {
			t.Errorf("no OCI label org.opencontainers.image.%s", want)
		}
	}
	// The CMake targets the build stage builds exist, and each lands in build/bin under its own name.
	var built []string
	for _, l := range d.lines {
		if m := regexp.MustCompile(`--target ((?:[a-z-]+ ?)+)`).FindStringSubmatch(l); m != nil {
			built = strings.Fields(m[1])
		}
	}
	if len(built) != 4 {
		t.Fatalf("build stage builds %v, want the three servers and the CLI", built)
	}
	for _, b := range built {
		if _, err := os.Stat(filepath.Join(binDir(t), b)); err != nil {
			t.Errorf("target %s does not produce build/bin/%s: %v", b, b, err)
		}
		if !strings.Contains(strings.Join(d.lines, "\n"), "for b in "+strings.Join(built, " ")+";") {
			t.Errorf("the copy loop does not install exactly the built targets %v", built)
		}
	}
	// The user is the uid the pods run as; the exposed ports are the servers' ports; every command a
	// manifest runs is a program of the image or a shell tool of the base image.
	uid := strings.Split(user, ":")[0]
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the image must run as a non-root uid", user)
	}
	ports := map[int]bool{}
	for _, dir := range append(append([]string{}, overlays...), jobDirs...) {
		r := render(t, dir)
		var pods []*corev1.PodSpec
		for _, dep := range Of[appsv1.Deployment](r) {
			pods = append(pods, &dep.Spec.Template.Spec)
		}
		for _, j := range Of[batchv1.Job](r) {
			pods = append(pods, &j.Spec.Template.Spec)
		}
		for _, pod := range pods {
			if pod.SecurityContext == nil || pod.SecurityContext.RunAsUser == nil ||
				strconv.FormatInt(*pod.SecurityContext.RunAsUser, 10) != uid {
				t.Errorf("%s: pod runAsUser differs from the image's USER %s", dir, uid)
			}
			for _, c := range pod.Containers {
				cmd := c.Command[0]
				if filepath.Dir(cmd) == imageBinDir && !contains(built, filepath.Base(cmd)) {
					t.Errorf("%s: command %s is not a program of the image", dir, cmd)
				}
				if filepath.Dir(cmd) != imageBinDir && cmd != "/bin/sh" {
					t.Errorf("%s: command %s: use /usr/local/bin/<program> or /bin/sh", dir, cmd)
				}
			}
		}
		for _, s := range servers(t, r) {
			ports[s.intFlag(t, "port")] = true
			ports[s.intFlag(t, "metrics_port")] = true
		}
	}
	sort.Ints(exposed)
	if got, want := exposed, sortedInts(ports); !equalInts(got, want) {
		t.Errorf("EXPOSE %v, but the servers listen on %v", got, want)
	}
	// The shell tools the Job scripts and preStop hooks use come from Debian's Essential packages, which
	// every Debian image (slim included) has.
	tools := []string{"sh", "sleep", "sed", "grep", "wc", "head", "tr", "mv", "mkdir", "rm", "tar"}
	var toolPaths []string
	for _, tool := range tools {
		path, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		toolPaths = append(toolPaths, path)
	}
	owners := dpkgOwners(t, toolPaths)
	for i, tool := range tools {
		pkg := owners[toolPaths[i]]
		out, _ := exec.Command("dpkg-query", "-W", "-f=${Essential}", pkg).Output()
		if strings.TrimSpace(string(out)) != "yes" {
			t.Errorf("%s comes from %s, which is not Essential: the runtime stage must install it", tool, pkg)
		}
	}
}

// TestRuntimeLibraries: the runtime stage installs exactly the Debian packages that own the shared
// libraries the four programs load (ldd of this Debian 12 build), minus those debian:12-slim has.
func TestRuntimeLibraries(t *testing.T) {
	d := readDockerfile(t)
	libs := map[string]bool{}
	for _, b := range []string{"maas-gateway", "maas-generative", "maas-discriminative", "maas"} {
		out, err := exec.Command("ldd", filepath.Join(binDir(t), b)).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", b, err)
		}
		if strings.Contains(string(out), "not found") {
			t.Errorf("ldd %s: a library is not found:\n%s", b, out)
		}
		for _, m := range regexp.MustCompile(`=> (/\S+)`).FindAllStringSubmatch(string(out), -1) {
			libs[m[1]] = true
		}
	}
	need := map[string][]string{}
	for lib, pkg := range dpkgOwners(t, sortedKeys(libs)) {
		if !slimBasePackages[pkg] && !sanitizerPackages[pkg] {
			need[pkg] = append(need[pkg], filepath.Base(lib))
		}
	}
	listed := map[string]bool{}
	for _, p := range d.runtime {
		listed[p] = true
		if need[p] == nil {
			t.Errorf("runtime stage installs %s, which no program loads", p)
		}
	}
	for _, p := range sortedKeys(need) {
		if !listed[p] {
			t.Errorf("runtime stage misses %s (for %v)", p, need[p])
		}
	}
}

// dpkgOwners maps each file to the Debian package that owns it (trying the merged-/usr aliases of the
// path), with one dpkg-query call for all of them.
func dpkgOwners(t *testing.T, paths []string) map[string]string {
	aliases := map[string][]string{}
	var all []string
	for _, path := range paths {
		candidates := []string{path}
		if real, err := filepath.EvalSymlinks(path); err == nil {
			candidates = append(candidates, real)
		}
		for _, c := range append([]string{}, candidates...) {
			if strings.HasPrefix(c, "/usr/") {
				candidates = append(candidates, strings.TrimPrefix(c, "/usr"))
			} else {
				candidates = append(candidates, "/usr"+c)
			}
		}
		aliases[path] = candidates
		all = append(all, candidates...)
	}
	out, _ := exec.Command("dpkg-query", append([]string{"-S"}, all...)...).Output() // non-zero: some alias unknown
	owner := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, "diversion by") {
			continue
		}
		i := strings.Index(line, ": /")
		if i < 0 {
			continue
		}
		pkgs, file := line[:i], line[i+2:]
		owner[file] = strings.SplitN(strings.Split(pkgs, ",")[0], ":", 2)[0]
	}
	result := map[string]string{}
	for _, path := range paths {
		for _, c := range aliases[path] {
			if p, ok := owner[c]; ok {
				result[path] = p
				break
			}
		}
		if result[path] == "" {
			t.Fatalf("no Debian package owns %s", path)
		}
	}
	return result
}

// dockerignore returns a matcher of the repository's .dockerignore patterns (top-level paths and globs).
func dockerignore(t *testing.T) func(string) bool {
	b, err := os.ReadFile(filepath.Join(sourceDir(t), ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimPrefix(l, "**/"))
		}
	}
	return func(p string) bool {
		p = strings.TrimSuffix(strings.TrimPrefix(p, "./"), "/")
		for _, pat := range patterns {
			for q := p; q != "." && q != "/" && q != ""; q = filepath.Dir(q) {
				if ok, _ := filepath.Match(pat, q); ok {
					return true
				}
			}
		}
		return false
	}
}

func sortedInts(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
