package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestFindRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "cmd", "popgate", "testdata")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, toolsModule), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := findRoot(deep); err == nil {
		t.Fatal("found a root without tools/go.mod")
	}
	if err := os.WriteFile(filepath.Join(root, toolsModule, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, deep, filepath.Join(root, toolsModule)} {
		got, err := findRoot(dir)
		if err != nil || got != root {
			t.Errorf("findRoot(%s) = %q, %v; want %s", dir, got, err, root)
		}
	}
}

func TestFindRootRejectsDirectory(t *testing.T) {
	root := t.TempDir()
	// tools/go.mod must be a file: a directory of that name is not a module.
	if err := os.MkdirAll(filepath.Join(root, toolsModule, "go.mod"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findRoot(root); err == nil {
		t.Errorf("findRoot accepted a go.mod directory at %s", got)
	}
}

// TestGoToolTask runs `go tool task` as a user does, from a subdirectory of
// the repository, and checks that it is the task release that
// tools/go.mod names and that it finds the repository's Taskfile.
func TestGoToolTask(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the task runner")
	}
	mod, err := os.ReadFile(filepath.Join("..", "..", toolsModule, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/go-task/task/v3 (v[0-9.]+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("tools/go.mod does not require github.com/go-task/task/v3")
	}
	out, err := exec.Command("go", "tool", "task", "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), string(m[1])) {
		t.Errorf("go tool task --version: %v\n%s\nwant %s", err, out, m[1])
	}
	out, err = exec.Command("go", "tool", "task", "--list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "* run:") || !strings.Contains(string(out), "* test:") {
		t.Errorf("go tool task --list: %v\n%s", err, out)
	}
	// The task binary is the cgo-free build that `task run` shares its
	// standard library with.
	bin, err := toolBinary(filepath.Join("..", "..", toolsModule))
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CGO_ENABLED=0") {
		t.Errorf("go version -m %s: %v\n%s\nwant a build with CGO_ENABLED=0", bin, err, out)
	}
	// A task that does not exist: task's own error and exit code come
	// through the wrapper.
	cmd := exec.Command("go", "tool", "task", "no-such-task")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `"no-such-task" does not exist`) {
		t.Errorf("go tool task no-such-task: %v\n%s", err, out)
	}
}

// TestToolsShareVersions checks that a module required by both go.mod and
// tools/go.mod is at the same version in both: otherwise a first run
// compiles it twice, once for the task runner and once for popgate.
func TestToolsShareVersions(t *testing.T) {
	main := requires(t, filepath.Join("..", "..", "go.mod"))
	tools := requires(t, filepath.Join("..", "..", toolsModule, "go.mod"))
	shared := 0
	for mod, v := range tools {
		if mv, ok := main[mod]; ok {
			shared++
			if mv != v {
				t.Errorf("%s: %s in tools/go.mod, %s in go.mod", mod, v, mv)
			}
		}
	}
	if shared == 0 {
		t.Error("no module in both go.mod files: the parser is broken")
	}
}

// requires reads the module versions a go.mod requires.
func requires(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:require\s+)?([a-z0-9.-]+\.[a-z]+/\S+) (v\S+)`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	return out
}
