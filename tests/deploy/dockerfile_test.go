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

// pathAliases: a path, its resolved form, and the merged-/usr alias of each (dpkg records either).
func pathAliases(path string) []string {
	candidates := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		candidates = append(candidates, real)
	}
	for _, c := range append([]string{}, candidates...) {
		if strings.HasPrefix(c, "/usr/") {
			candidates = append(candidates, strings.TrimPrefix(c, "/usr"))
		} else {
			candidates = append(candidates, "/usr"+c)
		}
	}
	return candidates
}

// dpkgOwners maps each file to the Debian package that owns it (trying the merged-/usr aliases of the
// path), with one dpkg-query call for all of them.
func dpkgOwners(t *testing.T, paths []string) map[string]string {
	aliases := map[string][]string{}
	var all []string
	for _, path := range paths {
		candidates := pathAliases(path)
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

// TestDockerBuildContext reproduces the image's build stage without Docker, as far as it goes without one:
// exactly the Dockerfile's COPY sources (minus .dockerignore) in a fresh directory must configure with CMake,
// and every Debian package that configure uses (the owners of the files CMake found, and what they depend on)
// must come from the packages `MAAS_DEPS=cpp deploy/install-deps.sh` installs there.
func TestDockerBuildContext(t *testing.T) {
	d := readDockerfile(t)
	src := sourceDir(t)
	ignore := dockerignore(t)
	work := t.TempDir()
	ctx := filepath.Join(work, "src")
	inBuild := false
	for _, l := range d.lines {
		fields := strings.Fields(l)
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			inBuild = regexp.MustCompile(`(?i)\sAS\s+build$`).MatchString(l)
		case "COPY":
			if !inBuild {
				continue
			}
			var args []string
			for _, f := range fields[1:] {
				if !strings.HasPrefix(f, "--") {
					args = append(args, f)
				}
			}
			dest := args[len(args)-1]
			for _, p := range args[:len(args)-1] {
				to := filepath.Join(ctx, dest)
				if strings.HasSuffix(dest, "/") || len(args) > 2 {
					to = filepath.Join(to, filepath.Base(p))
				}
				copyContext(t, src, p, to, ignore)
			}
		}
	}
	build := filepath.Join(work, "build")
	cmd := exec.Command("cmake", "-S", ctx, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cmake configure of the build stage's sources failed (what `docker build` runs): %v\n%s", err, out)
	}

	cpp := installDepsCppPackages(t)
	closure := dependencyClosure(t, cpp)
	cache, err := os.ReadFile(filepath.Join(build, "CMakeCache.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// Optional for the C++ build: the clients' test tools (the image has neither; CMake registers a failing
	// test without them), CTest's memory checker, the install prefix.
	optional := map[string]bool{"MAAS_GO": true, "MAAS_NODE": true, "MEMORYCHECK_COMMAND": true,
		"CMAKE_INSTALL_PREFIX": true}
	found := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z0-9_.+-]+):(?:PATH|FILEPATH)=(/\S*)$`).FindAllStringSubmatch(string(cache), -1) {
		name, path := m[1], m[2]
		if optional[name] || strings.HasPrefix(path, work) || strings.HasPrefix(path, src) {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			continue // a NOTFOUND or a path CMake only proposes
		}
		found[name] = path
	}
	if len(found) < 10 {
		t.Fatalf("the configure's cache names only %d files or directories: %v", len(found), found)
	}
	owners := dpkgAllOwners(t, found)
	for _, name := range sortedKeys(found) {
		ok := false
		for _, o := range owners[name] {
			ok = ok || closure[o]
		}
		switch {
		case len(owners[name]) == 0:
			t.Errorf("CMake's %s=%s belongs to no Debian package: the image cannot have it", name, found[name])
		case !ok:
			t.Errorf("CMake's %s=%s comes from %v, which MAAS_DEPS=cpp deploy/install-deps.sh does not install "+
				"(add it to cpp_debs)", name, found[name], owners[name])
		}
	}
}

// copyContext copies repository path rel (file or directory) to dest, leaving out what .dockerignore excludes.
func copyContext(t *testing.T, src, rel, dest string, ignore func(string) bool) {
	root := filepath.Join(src, rel)
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		if ignore(r) {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		sub, _ := filepath.Rel(root, p)
		to := filepath.Join(dest, sub)
		switch {
		case info.IsDir():
			return os.MkdirAll(to, 0o755)
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			return os.WriteFile(to, b, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("COPY %s: %v", rel, err)
	}
}

// installDepsCppPackages parses deploy/install-deps.sh: the packages of its cpp_debs array (what MAAS_DEPS=cpp
// installs).
func installDepsCppPackages(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join(sourceDir(t), "deploy", "install-deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?ms)^cpp_debs=\((.*?)\)`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("deploy/install-deps.sh has no cpp_debs=( ... ) array (the packages MAAS_DEPS=cpp installs)")
	}
	var pkgs []string
	for _, line := range strings.Split(m[1], "\n") {
		line, _, _ = strings.Cut(line, "#")
		pkgs = append(pkgs, strings.Fields(line)...)
	}
	if !regexp.MustCompile(`MAAS_DEPS:-all}" = cpp \] \|\| debs\+=`).Match(b) {
		t.Error(`deploy/install-deps.sh: MAAS_DEPS=cpp must install only cpp_debs (expected '[ "${MAAS_DEPS:-all}" = cpp ] || debs+=...')`)
	}
	return pkgs
}

// dependencyClosure: the packages apt installs for pkgs (Depends and Pre-Depends, every alternative, virtual
// packages resolved to their providers), from this machine's dpkg database.
func dependencyClosure(t *testing.T, pkgs []string) map[string]bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	installed := map[string]bool{}
	deps := map[string][]string{}
	providers := map[string][]string{}
	name := regexp.MustCompile(`^\s*([a-z0-9][a-z0-9.+-]*)`)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || !strings.HasPrefix(f[0], "ii") {
			continue
		}
		installed[f[1]] = true
		for _, alt := range strings.FieldsFunc(f[2], func(r rune) bool { return r == ',' || r == '|' }) {
			if m := name.FindStringSubmatch(alt); m != nil {
				deps[f[1]] = append(deps[f[1]], m[1])
			}
		}
		for _, p := range strings.Split(f[3], ",") {
			if m := name.FindStringSubmatch(p); m != nil {
				providers[m[1]] = append(providers[m[1]], f[1])
			}
		}
	}
	closure := map[string]bool{}
	var visit func(string)
	visit = func(p string) {
		if closure[p] {
			return
		}
		closure[p] = true
		for _, d := range append(deps[p], providers[p]...) {
			visit(d)
		}
	}
	for _, p := range pkgs {
		if !installed[p] {
			t.Errorf("install-deps' cpp package %s is not installed on this machine: cannot check what it brings", p)
		}
		visit(p)
	}
	return closure
}

// dpkgAllOwners maps each named path to every Debian package that owns it (a directory may have several),
// trying its resolved and merged-/usr forms.
func dpkgAllOwners(t *testing.T, paths map[string]string) map[string][]string {
	result := map[string][]string{}
	for name, path := range paths {
		out, _ := exec.Command("dpkg-query", append([]string{"-S"}, pathAliases(path)...)...).Output()
		for _, line := range strings.Split(string(out), "\n") {
			i := strings.Index(line, ": /")
			if i < 0 || strings.HasPrefix(line, "diversion by") {
				continue
			}
			for _, p := range strings.Split(line[:i], ",") {
				result[name] = append(result[name], strings.SplitN(strings.TrimSpace(p), ":", 2)[0])
			}
		}
	}
	return result
}
