package maas_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeExample returns the code block that follows the line "<!-- example: path ... -->" in README.md and the
// output block right after it.
func readmeExample(t *testing.T, readme, path string) (code, output string) {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "<!-- example: "+path)
	if !ok {
		t.Fatalf("README.md has no <!-- example: %s --> marker", path)
	}
	blocks := make([]string, 0, 2)
	for len(blocks) < 2 {
		_, after, ok := strings.Cut(rest, "\n```")
		if !ok {
			t.Fatalf("README.md: the %s example needs a code block and an output block", path)
		}
		_, body, _ := strings.Cut(after, "\n") // drop the info string
		block, tail, ok := strings.Cut(body, "```")
		if !ok {
			t.Fatalf("README.md: unterminated block in the %s example", path)
		}
		blocks, rest = append(blocks, block), tail
	}
	return blocks[0], blocks[1]
}

// The README's Go example is clients/go/examples/quickstart/main.go verbatim, and running it against a live
// gateway prints the output the README shows.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	code, want := readmeExample(t, string(readme), "clients/go/examples/quickstart/main.go")
	file, err := os.ReadFile(filepath.Join("..", "examples", "quickstart", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if code != string(file) {
		t.Fatal("README.md's Go example differs from clients/go/examples/quickstart/main.go: copy the file into the README")
	}
	goTool := os.Getenv("MAAS_GO")
	if goTool == "" {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Fatal("no go tool: set MAAS_GO or put go on PATH")
		}
	}
	cmd := exec.Command(goTool, "run", "./examples/quickstart")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "MAAS_TARGET="+liveStack.gateway.address())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run ./examples/quickstart: %v\n%s", err, stderr.String())
	}
	if stdout.String() != want {
		t.Fatalf("the example printed\n%s\nthe README shows\n%s", stdout.String(), want)
	}
}
