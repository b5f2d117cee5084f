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
	// A task that does not exist: task's own error and exit code come
	// through the wrapper.
	cmd := exec.Command("go", "tool", "task", "no-such-task")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `"no-such-task" does not exist`) {
		t.Errorf("go tool task no-such-task: %v\n%s", err, out)
	}
}
