// Package deploy validates deploy/ offline: it renders every kustomize overlay and Job example, decodes
// every object strictly into its Kubernetes (or Istio) API type, lints the YAML, checks that flags, probes,
// labels, ports and the Dockerfile agree with the code, and runs the sharded Sample Job's scripts against
// the real binaries on loopback.
//
// Environment (set by tests/deploy/CMakeLists.txt): MAAS_SOURCE_DIR, MAAS_BUILD_DIR (binaries in bin/),
// MAAS_KUSTOMIZE (the pinned kustomize), MAAS_PYTHON (the project virtualenv's python).
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// What make test renders: every overlay and every Job example.
var overlays = []string{"overlays/dev", "overlays/tls", "overlays/linkerd", "overlays/istio"}
var jobDirs = []string{"jobs/sample", "jobs/estimate"}

// Secrets the operator creates (never rendered: they hold credentials). Any other reference must resolve.
var operatorSecrets = map[string]bool{"maas-auth": true, "maas-tls": true}

func env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set (run through ctest, see tests/deploy/CMakeLists.txt)", name)
	}
	return v
}

func sourceDir(t testing.TB) string { return env(t, "MAAS_SOURCE_DIR") }
func k8sDir(t testing.TB) string    { return filepath.Join(sourceDir(t), "deploy", "k8s") }
func binDir(t testing.TB) string    { return filepath.Join(env(t, "MAAS_BUILD_DIR"), "bin") }

// Object is one rendered manifest: its raw YAML and the strictly decoded typed value.
type Object struct {
	APIVersion, Kind, Name, Namespace string
	Raw                               []byte
	Value                             any
}

// Rendered is the output of one `kustomize build`.
type Rendered struct {
	Dir     string
	YAML    []byte
	Objects []Object
}

// Of returns the decoded objects of one kind.
func Of[T any](r *Rendered) []*T {
	var out []*T
	for _, o := range r.Objects {
		if v, ok := o.Value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

var (
	renderMu    sync.Mutex
	renderCache = map[string]*Rendered{}
)

// render runs the pinned kustomize on deploy/k8s/<dir> and decodes every object strictly (cached per dir).
func render(t testing.TB, dir string) *Rendered {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if r, ok := renderCache[dir]; ok {
		return r
	}
	cmd := exec.Command(env(t, "MAAS_KUSTOMIZE"), "build", filepath.Join(k8sDir(t), dir))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	r := &Rendered{Dir: dir, YAML: out}
	for i, doc := range splitDocuments(out) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("%s: document %d: %v", dir, i, err)
		}
		value, err := decodeStrict(head.APIVersion, head.Kind, doc)
		if err != nil {
			t.Errorf("%s: %s %s/%s: %v", dir, head.APIVersion, head.Kind, head.Metadata.Name, err)
			continue
		}
		r.Objects = append(r.Objects, Object{head.APIVersion, head.Kind, head.Metadata.Name,
			head.Metadata.Namespace, doc, value})
	}
	renderCache[dir] = r
	return r
}

func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// flagNames returns the flags a binary accepts, from its --helpfull and --help output (absl lists each
// flag as an indented "--name (description)" line; a shorter --help may list only the binary's own flags,
// the union covers both).
var (
	flagsMu    sync.Mutex
	flagsCache = map[string]map[string]bool{}
)

func flagNames(t testing.TB, binary string) map[string]bool {
	t.Helper()
	flagsMu.Lock()
	defer flagsMu.Unlock()
	if f, ok := flagsCache[binary]; ok {
		return f
	}
	path := filepath.Join(binDir(t), binary)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("binary %s: %v (build it first)", path, err)
	}
	names := map[string]bool{}
	lineFlag := regexp.MustCompile(`(?m)^\s*--([a-z][a-z0-9_]*)\b`)
	anyFlag := regexp.MustCompile(`--([a-z][a-z0-9_]*)`)
	for _, arg := range []string{"--helpfull", "--help"} {
		out, _ := exec.Command(path, arg).CombinedOutput() // absl's help exits non-zero
		re := lineFlag
		if binary == "maas" {
			re = anyFlag // the CLI's usage text shows flags inline: maas [--target=HOST:PORT] ...
		}
		for _, m := range re.FindAllStringSubmatch(string(out), -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 3 {
		t.Fatalf("%s: could not read its flags from --helpfull / --help", binary)
	}
	flagsCache[binary] = names
	return names
}

// flagLine is one --name=value of a flagfile or an args list.
type flagLine struct{ Name, Value, Where string }

// parseFlagfile reads absl flagfile syntax: one --flag=value per line, '#' comments, blank lines.
func parseFlagfile(text, where string) ([]flagLine, error) {
	var out []flagLine
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f, ok := parseFlagArg(line)
		if !ok {
			return nil, fmt.Errorf("%s:%d: not a --flag=value line: %q", where, i+1, line)
		}
		f.Where = fmt.Sprintf("%s:%d", where, i+1)
		out = append(out, f)
	}
	return out, nil
}

func parseFlagArg(arg string) (flagLine, bool) {
	m := regexp.MustCompile(`^--?([a-z][a-z0-9_]*)(?:=(.*))?$`).FindStringSubmatch(arg)
	if m == nil {
		return flagLine{}, false
	}
	return flagLine{Name: m[1], Value: m[2]}, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func metav1LabelSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Nothing(), nil
	}
	return metav1.LabelSelectorAsSelector(s)
}
