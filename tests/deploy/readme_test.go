package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every command of README.md's Deploy section names something that exists: repository paths, rendered
// overlays and Jobs, the Kubernetes objects it addresses (kind/name), the Secrets it creates, the
// namespaces, the `maas` CLI flags and the make targets.
func TestReadmeDeployCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sourceDir(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Deploy")
	if start < 0 {
		t.Fatal(`README.md has no "## Deploy" section`)
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	// Commands: the ```sh blocks (continuations joined) and the inline `kubectl ...` / `kustomize ...` spans.
	var commands []string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		commands = append(commands, strings.Split(strings.ReplaceAll(block[1], "\\\n", " "), "\n")...)
	}
	for _, m := range regexp.MustCompile("`((?:kubectl|kustomize|make|build/bin/maas|maas) [^`]+)`").FindAllStringSubmatch(strings.ReplaceAll(section, "\n", " "), -1) {
		commands = append(commands, m[1])
	}
	if len(commands) < 15 {
		t.Fatalf("found only %d commands in the Deploy section", len(commands))
	}

	// What exists: every rendered object by kind and name, the namespaces the overlays use.
	objects := map[string]bool{}
	namespaces := map[string]bool{}
	for _, dir := range append(append([]string{}, overlays...), jobDirs...) {
		for _, o := range render(t, dir).Objects {
			objects[strings.ToLower(o.Kind)+"/"+o.Name] = true
			if o.Namespace != "" {
				namespaces[o.Namespace] = true
			}
		}
	}
	for name := range operatorSecrets {
		objects["secret/"+name] = true
	}
	kindAlias := map[string]string{"deploy": "deployment", "svc": "service", "hpa": "horizontalpodautoscaler",
		"pdb": "poddisruptionbudget", "pvc": "persistentvolumeclaim", "cm": "configmap", "netpol": "networkpolicy"}
	makefile, _ := os.ReadFile(filepath.Join(sourceDir(t), "Makefile"))
	cli := flagNames(t, "maas")
	renderable := map[string]bool{}
	for _, d := range append(append([]string{}, overlays...), jobDirs...) {
		renderable["deploy/k8s/"+d] = true
	}

	checked := 0
	for _, cmd := range commands {
		cmd = strings.TrimSpace(cmd)
		if cmd == "" || strings.HasPrefix(cmd, "#") {
			continue
		}
		checked++
		for _, m := range regexp.MustCompile(`\b((?:deploy|tests|proto|services|common|clients)/[\w./-]*\w)`).FindAllStringSubmatch(cmd, -1) {
			if _, err := os.Stat(filepath.Join(sourceDir(t), m[1])); err != nil {
				t.Errorf("README Deploy: %q: %s does not exist", cmd, m[1])
			}
		}
		for _, m := range regexp.MustCompile(`\bbuild/(bin/[\w-]+)`).FindAllStringSubmatch(cmd, -1) {
			if _, err := os.Stat(filepath.Join(env(t, "MAAS_BUILD_DIR"), m[1])); err != nil {
				t.Errorf("README Deploy: %q: build/%s is not built", cmd, m[1])
			}
		}
		if m := regexp.MustCompile(`kustomize build (\S+)`).FindStringSubmatch(cmd); m != nil && !renderable[m[1]] {
			t.Errorf("README Deploy: %q: %s is not an overlay or Job example make test renders", cmd, m[1])
		}
		// `cd DIR && kustomize edit ...`: an overlay, or a component the renders include (components/image).
		if m := regexp.MustCompile(`cd (deploy/k8s/\S+) &&`).FindStringSubmatch(cmd); m != nil && !renderable[m[1]] {
			k, _ := os.ReadFile(filepath.Join(sourceDir(t), m[1], "kustomization.yaml"))
			if !regexp.MustCompile(`(?m)^kind: Component$`).Match(k) {
				t.Errorf("README Deploy: %q: %s is neither a rendered overlay nor a kustomize Component", cmd, m[1])
			}
		}
		if strings.HasPrefix(cmd, "kubectl") {
			for _, m := range regexp.MustCompile(`\b(deployment|deploy|svc|service|job|hpa|pdb|pvc|configmap|cm|secret|networkpolicy|netpol)/([a-z0-9-]+)`).FindAllStringSubmatch(cmd, -1) {
				kind := m[1]
				if a, ok := kindAlias[kind]; ok {
					kind = a
				}
				if !objects[kind+"/"+m[2]] {
					t.Errorf("README Deploy: %q: no %s named %s is rendered", cmd, kind, m[2])
				}
			}
			if m := regexp.MustCompile(`\b(?:get|patch|delete|describe) (deployment|svc|service|job|hpa|secret)s? ((?:[a-z0-9-]+ ?)+)`).FindStringSubmatch(cmd); m != nil {
				kind := m[1]
				if a, ok := kindAlias[kind]; ok {
					kind = a
				}
				for _, name := range strings.Fields(m[2]) {
					if strings.HasPrefix(name, "-") {
						break
					}
					if !objects[kind+"/"+name] {
						t.Errorf("README Deploy: %q: no %s named %s is rendered", cmd, kind, name)
					}
				}
			}
			if m := regexp.MustCompile(`create secret generic ([a-z0-9-]+)`).FindStringSubmatch(cmd); m != nil && !operatorSecrets[m[1]] {
				t.Errorf("README Deploy: %q: the manifests use no Secret %s", cmd, m[1])
			}
			if m := regexp.MustCompile(`create namespace ([a-z0-9-]+)`).FindStringSubmatch(cmd); m != nil && !namespaces[m[1]] {
				t.Errorf("README Deploy: %q: no overlay uses namespace %s", cmd, m[1])
			}
			if m := regexp.MustCompile(`-n ([a-z0-9-]+)`).FindStringSubmatch(cmd); m != nil && !namespaces[m[1]] {
				t.Errorf("README Deploy: %q: no overlay uses namespace %s", cmd, m[1])
			}
			if m := regexp.MustCompile(`-l app\.kubernetes\.io/name=([a-z0-9-]+)`).FindStringSubmatch(cmd); m != nil &&
				!objects["deployment/"+m[1]] {
				t.Errorf("README Deploy: %q: no Deployment's pods carry app.kubernetes.io/name=%s", cmd, m[1])
			}
		}
		if m := regexp.MustCompile(`^(?:build/bin/)?maas (.*)$`).FindStringSubmatch(cmd); m != nil {
			for _, f := range regexp.MustCompile(`--([a-z][a-z0-9_]*)`).FindAllStringSubmatch(m[1], -1) {
				if !cli[f[1]] {
					t.Errorf("README Deploy: %q: --%s is not a flag of the maas CLI", cmd, f[1])
				}
			}
		}
		if m := regexp.MustCompile(`^make (\w+)`).FindStringSubmatch(cmd); m != nil &&
			!regexp.MustCompile(`(?m)^`+m[1]+`:`).Match(makefile) {
			t.Errorf("README Deploy: %q: no make target %s", cmd, m[1])
		}
	}
	t.Logf("checked %d commands", checked)
}
