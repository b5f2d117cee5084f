//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestImportMboxHonoursSpoolLocks: while mail.local holds the dot-lock or
// an exclusive flock, the import waits and then gives up, leaving the
// other program's dot-lock alone.
func TestImportMboxHonoursSpoolLocks(t *testing.T) {
	dir, cfgFile := importEnv(t)
	spool := filepath.Join(dir, "alice")
	writeSpool(t, spool, spoolMsg1)

	writeSpool(t, spool+".lock", "")
	code, _, errOut := runCLI(t, "import", "mbox", "--config", cfgFile, "--lock-timeout", "0s", "alice", spool)
	if code != 1 || !strings.Contains(errOut, "dot-lock") || !strings.Contains(errOut, "locked by another program") {
		t.Errorf("with a dot-lock held: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(spool + ".lock"); err != nil {
		t.Errorf("someone else's dot-lock was removed: %v", err)
	}
	if err := os.Remove(spool + ".lock"); err != nil {
		t.Fatal(err)
	}

	f, err := os.OpenFile(spool, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "import", "mbox", "--config", cfgFile, "--lock-timeout", "0s", "alice", spool)
	if code != 1 || !strings.Contains(errOut, "flock") {
		t.Errorf("with an exclusive flock held: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(spool + ".lock"); !os.IsNotExist(err) {
		t.Errorf("our dot-lock was not removed after giving up: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "import", "mbox", "--config", cfgFile, "alice", spool); code != 0 || !strings.Contains(out, "1 imported") {
		t.Errorf("after the locks are gone: exit %d %q %q", code, out, errOut)
	}
}
