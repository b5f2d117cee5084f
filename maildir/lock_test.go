package maildir

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"
)

func TestLockExclusiveInProcess(t *testing.T) {
	s, _ := newMemStore(t)
	mb := mustOpen(t, s, "example.com", "alice")
	unlock, err := mb.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	// The same mailbox reached through another Open (and another spelling
	// of the domain) is the same lock.
	if _, err := mustOpen(t, s, "EXAMPLE.com", "alice").Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock via another Mailbox: %v, want ErrLocked", err)
	}
	// Another mailbox is independent.
	unlockBob, err := mustOpen(t, s, "example.com", "bob").Lock()
	if err != nil {
		t.Fatal(err)
	}
	if err := unlockBob(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	unlock2, err := mb.Lock()
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	// A stale unlock from the first session must not release the second.
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("old unlock released the new lock: %v", err)
	}
	if err := unlock2(); err != nil {
		t.Fatal(err)
	}
}

func TestLockTwoStoresOnDisk(t *testing.T) {
	root := t.TempDir()
	s1 := NewStore(afero.NewOsFs(), root, Options{})
	s2 := NewStore(afero.NewOsFs(), root, Options{})
	unlock, err := mustOpen(t, s1, "example.com", "alice").Lock()
	if err != nil {
		t.Fatal(err)
	}
	lease := filepath.Join(root, "example.com", "alice", leaseFile)
	if _, err := os.Stat(lease); err != nil {
		t.Errorf("lease file: %v", err)
	}
	mb2 := mustOpen(t, s2, "example.com", "alice")
	if _, err := mb2.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock from a second store: %v, want ErrLocked", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lease); !os.IsNotExist(err) {
		t.Errorf("lease file after unlock: %v, want gone", err)
	}
	unlock2, err := mb2.Lock()
	if err != nil {
		t.Fatalf("Lock after the first store unlocked: %v", err)
	}
	if err := unlock2(); err != nil {
		t.Fatal(err)
	}
}

// lockHelperEnv makes the test binary act as a second popgate process
// holding a lock (see TestLockHelperProcess).
const lockHelperEnv = "POPGATE_MAILDIR_LOCK_HELPER"

// TestLockHelperProcess is not a test: run by TestLockReleasedWhenHolderKilled
// in a child process, it locks the maildir root given in the environment,
// says so, and waits to be killed.
func TestLockHelperProcess(t *testing.T) {
	root := os.Getenv(lockHelperEnv)
	if root == "" {
		t.Skip("helper process only")
	}
	s := NewStore(afero.NewOsFs(), root, Options{})
	mb, err := s.Open("example.com", "alice")
	if err != nil {
		os.Exit(2)
	}
	if _, err := mb.Lock(); err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(3)
	}
	os.Stdout.WriteString("locked\n")
	select {}
}

// TestLockReleasedWhenHolderKilled: a process killed with -9 cannot
// release its lease; the mailbox stays locked until the lease expires (on
// the taker's clock), then it is taken over.
func TestLockReleasedWhenHolderKilled(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	clk := &testClock{t: time.Now()}
	mb := mustOpen(t, NewStore(afero.NewOsFs(), root, Options{Now: clk.now}), "example.com", "alice")
	if _, err := mb.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while another process holds it: %v, want ErrLocked", err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup in the holder
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := mb.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock right after the holder was killed: %v, want ErrLocked until the lease expires", err)
	}
	clk.advance(DefaultLeaseTTL + time.Second)
	unlock, err := mb.Lock()
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestLockCleansStaleTmp(t *testing.T) {
	s, fs := newMemStore(t) // clock fixed at testTime
	old := mdir + "/tmp/1731800000.M1P1Q1.crashed"
	recent := mdir + "/tmp/1732000000.M1P1Q2.inflight"
	writeFile(t, fs, old, "partial")
	writeFile(t, fs, recent, "partial")
	if err := fs.Chtimes(old, testTime.Add(-37*time.Hour), testTime.Add(-37*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := fs.Chtimes(recent, testTime.Add(-time.Hour), testTime.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	unlock, err := mustOpen(t, s, "example.com", "alice").Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if got := dirNames(t, fs, mdir+"/tmp"); len(got) != 1 || got[0] != "1732000000.M1P1Q2.inflight" {
		t.Errorf("tmp/ = %q, want only the recent file", got)
	}
}
