// Command task runs the project's task runner (go-task) so that
// `go tool task NAME` works on a machine with only Go installed.
//
// The task runner and its dependencies live in the separate module tools/
// (tools/go.mod), not in popgate's go.mod: a mail server's module graph
// should list what the server is built from, not a build tool's. This
// wrapper, which imports only the standard library, asks the go command
// for the task binary of that module (built once, then cached, as for any
// `go tool`) and replaces itself with it in the caller's directory.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// toolsModule is the directory, relative to the repository root, of the
// module that declares the task tool.
const toolsModule = "tools"

// toolName is the tool's name in that module's go.mod.
const toolName = "task"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "task wrapper:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := findRoot(wd)
	if err != nil {
		return err
	}
	bin, err := toolBinary(filepath.Join(root, toolsModule))
	if err != nil {
		return err
	}
	// Exec keeps the process: the terminal's signals and the exit code
	// reach task and its children as if task had been started directly.
	return syscall.Exec(bin, append([]string{toolName}, args...), os.Environ())
}

// findRoot returns the nearest directory at or above dir that holds the
// tools module, so that `go tool task` works from any subdirectory.
func findRoot(dir string) (string, error) {
	for d := dir; ; {
		if fi, err := os.Stat(filepath.Join(d, toolsModule, "go.mod")); err == nil && fi.Mode().IsRegular() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no %s/go.mod in %s or any parent directory", toolsModule, dir)
		}
		d = parent
	}
}

// toolEnv is the environment the task binary is built in: without cgo.
// The task runner needs none, and `task run` builds popgate the same way
// (the static binary it ships as), so that on a first run the standard
// library is compiled once for both, not once with cgo and once without.
func toolEnv(env []string) []string {
	return append(env, "CGO_ENABLED=0")
}

// toolBinary builds (or finds in the build cache) the task binary of the
// tools module and returns its path. `go tool -n` prints the command it
// would run instead of running it; for a module tool that is the cached
// executable. Download and build messages go to the caller's stderr.
func toolBinary(toolsDir string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("go", "-C", toolsDir, "tool", "-n", toolName)
	cmd.Env = toolEnv(os.Environ())
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go -C %s tool -n %s: %w", toolsDir, toolName, err)
	}
	bin := strings.TrimSpace(out.String())
	if strings.Contains(bin, "\n") || !filepath.IsAbs(bin) {
		return "", fmt.Errorf("go tool -n %s printed %q, not the path of an executable", toolName, bin)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", errors.Join(fmt.Errorf("go tool -n %s: no executable", toolName), err)
	}
	return bin, nil
}
