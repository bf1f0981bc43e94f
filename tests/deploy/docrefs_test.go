package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Directories that hold no source of the project (builds, installed tools, generated code, runtime data).
var docRefSkipDirs = map[string]bool{".git": true, ".venv": true, ".tools": true, "node_modules": true,
	"var": true, "gen": true, "dist": true, "__pycache__": true, ".mypy_cache": true}

// Documents of other projects that files cite by name.
var externalDocs = map[string]string{"PROTOCOL-HTTP2.md": "gRPC's doc/PROTOCOL-HTTP2.md"}

// TestDocReferences: every project document a file names exists, so comments and manifests never send a
// reader to a document that is not there. Checked: bare upper-case names (README.md, ARCHITECTURE.md: a
// document next to the file or at the repository root) and paths under docs/.
func TestDocReferences(t *testing.T) {
	src := sourceDir(t)
	bare := regexp.MustCompile(`(?:^|[^\w/.-])([A-Z][A-Z0-9_-]*\.md)\b`)
	docs := regexp.MustCompile(`(?:^|[^\w/.-])(docs/[\w./-]+\.md)\b`)
	checked := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Hidden directories hold tools and environments (.venv, .bench-venv, .ccache), never our sources.
			if p != src && (docRefSkipDirs[d.Name()] || strings.HasPrefix(d.Name(), "build") ||
				strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".h", ".cc", ".py", ".go", ".ts", ".yaml", ".yml", ".sh", ".txt", ".cmake", ".proto", ".flags",
			".env", ".md", ".toml":
		default:
			if d.Name() != "Dockerfile" && d.Name() != "Makefile" {
				return nil
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range bare.FindAllStringSubmatch(line, -1) {
				checked++
				if externalDocs[m[1]] != "" {
					continue
				}
				_, errHere := os.Stat(filepath.Join(filepath.Dir(p), m[1]))
				_, errRoot := os.Stat(filepath.Join(src, m[1]))
				if errHere != nil && errRoot != nil {
					t.Errorf("%s:%d names %s, which is neither next to it nor at the repository root", rel, i+1, m[1])
				}
			}
			for _, m := range docs.FindAllStringSubmatch(line, -1) {
				checked++
				if _, err := os.Stat(filepath.Join(src, m[1])); err != nil {
					t.Errorf("%s:%d names %s, which does not exist", rel, i+1, m[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("found only %d document references: is MAAS_SOURCE_DIR the repository?", checked)
	}
}
