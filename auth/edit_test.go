package auth

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
)

const keptPrefix = "# popgate users\r\n" +
	"  # indented comment with trailing space \n" +
	"\n" +
	"alice@example.com:{PLAIN}a:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G\n" +
	"a line this version does not understand\n" +
	"\t\n"

func TestEditUsersFile(t *testing.T) {
	t.Parallel()
	fs := afero.NewMemMapFs()
	const path = "/etc/popgate/users"
	if err := afero.WriteFile(fs, path, []byte(keptPrefix), 0o640); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := afero.ReadFile(fs, path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	if err := AddUser(fs, path, "Bob@Example.com", "{PLAIN}b"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), keptPrefix+"bob@example.com:{PLAIN}b\n"; got != want {
		t.Fatalf("after add:\n%q\nwant\n%q", got, want)
	}
	if err := AddUser(fs, path, "BOB@example.com", "{PLAIN}c"); !errors.Is(err, ErrUserExists) || !strings.Contains(err.Error(), "line 7") {
		t.Errorf("adding an existing user: %v", err)
	}

	hash := "{SHA256-CRYPT}" + vecBare5
	if err := SetPassword(fs, path, "ALICE@example.com", hash); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(keptPrefix, "{PLAIN}a:1000", hash+":1000", 1) + "bob@example.com:{PLAIN}b\n"
	if got := read(); got != want {
		t.Fatalf("after passwd, extra fields or other lines changed:\n%q\nwant\n%q", got, want)
	}
	if err := SetPassword(fs, path, "carol@example.com", "{PLAIN}c"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("passwd of a missing user: %v", err)
	}

	if err := DeleteUser(fs, path, "alice@EXAMPLE.com"); err != nil {
		t.Fatal(err)
	}
	want = strings.Replace(keptPrefix, "alice@example.com:{PLAIN}a:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G\n", "", 1) +
		"bob@example.com:{PLAIN}b\n"
	if got := read(); got != want {
		t.Fatalf("after delete:\n%q\nwant\n%q", got, want)
	}
	if err := DeleteUser(fs, path, "alice@example.com"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("deleting a missing user: %v", err)
	}
	// The mode is kept (MemMapFs keeps it too; the real-disk test checks the OS).
	if st, _ := fs.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	// ListUsers refuses the unknown line, naming it.
	if _, err := ListUsers(fs, path); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("ListUsers on a file with a bad line: %v", err)
	}
}

func TestEditRejectsBadInput(t *testing.T) {
	t.Parallel()
	fs := afero.NewMemMapFs()
	const path = "/users"
	cases := []struct {
		user, hash, want string
	}{
		{"bob", "{PLAIN}x", "no '@'"},
		{"bob@x.org:", "{PLAIN}x", "':'"},
		{"../bob@x.org", "{PLAIN}x", "path separator"},
		{"bob@x.org", "{PLAIN}x:y", "cannot hold"},
		{"bob@x.org", "{PLAIN}x\nevil@x.org:{PLAIN}y", "cannot hold"},
		{"bob@x.org", "{MD5}abc", "unknown password scheme"},
		{"bob@x.org", "{PLAIN}a\x00b", "control character"},
		{"bob@x.org", "plaintext", "no {SCHEME}"},
	}
	for _, c := range cases {
		err := AddUser(fs, path, c.user, c.hash)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddUser(%q, %q) = %v, want %q", c.user, c.hash, err, c.want)
		}
	}
	if ok, _ := afero.Exists(fs, path); ok {
		t.Error("a refused add created the file")
	}
	if err := SetPassword(fs, path, "bob@x.org", "{PLAIN}x"); err == nil {
		t.Error("SetPassword on a missing file")
	}
	if err := DeleteUser(fs, path, "bob@x.org"); err == nil {
		t.Error("DeleteUser on a missing file")
	}
	if _, err := ListUsers(fs, path); err == nil {
		t.Error("ListUsers on a missing file")
	}
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	fs := afero.NewMemMapFs()
	const path = "/users"
	for _, u := range []string{"zed@x.org", "Amy@x.org", "mid@y.org"} {
		if err := AddUser(fs, path, u, "{PLAIN}pw"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ListUsers(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"zed@x.org", "amy@x.org", "mid@y.org"}; !slices.Equal(got, want) {
		t.Errorf("ListUsers = %v, want file order %v", got, want)
	}
}

// TestEditRealDiskKeepsModeAndReloads works on a real directory: a new
// file is 0600, an existing file's mode is kept, no temporary file is left,
// and a running Users sees the edits.
func TestEditRealDiskKeepsModeAndReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	fs := afero.NewOsFs()
	if err := AddUser(fs, path, "alice@example.com", "{PLAIN}one"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v %v", st, err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	logger, _ := newTestLogger()
	users, err := NewUsers(fs, path, clk.now, logger)
	if err != nil {
		t.Fatal(err)
	}
	s := NewService(users, NewLimiter(noLimits, clk.now), logger)
	h, err := HashPassword("two")
	if err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(fs, path, "alice@example.com", h); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(fs, path, "bob@example.com", "{PLAIN}bob"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode after edits %v, want 0640", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"users", "users.lock"}) {
		t.Errorf("directory holds %v", names)
	}
	clk.advance(time.Second)
	if u, err := s.Authenticate(t.Context(), mustAddr("192.0.2.1"), "alice@example.com", "two"); err != nil || u != "alice@example.com" {
		t.Fatalf("new password after reload: %q %v", u, err)
	}
	if !s.UserExists("bob@example.com") {
		t.Error("added user not seen")
	}
}

func TestConcurrentEditsGoroutines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fs   afero.Fs
		path string
	}{
		{"memfs", afero.NewMemMapFs(), "/users"},
		{"osfs", afero.NewOsFs(), filepath.Join(t.TempDir(), "users")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addMany(t, tc.fs, tc.path, 8, 10)
			got, err := ListUsers(tc.fs, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 80 {
				t.Fatalf("%d users after 80 concurrent adds", len(got))
			}
		})
	}
}

// addMany adds workers×each users concurrently, named by prefix.
func addMany(t testing.TB, fs afero.Fs, path string, workers, each int) {
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				errs <- AddUser(fs, path, fmt.Sprintf("g%d-%d-%d@x.org", os.Getpid(), w, i), "{PLAIN}pw")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

const helperEnv = "POPGATE_AUTH_EDIT_HELPER"

// TestEditHelperProcess is not a test on its own: TestConcurrentEditsProcesses
// runs the test binary again with helperEnv set, and this adds users from
// that second process.
func TestEditHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper for TestConcurrentEditsProcesses")
	}
	addMany(t, afero.NewOsFs(), path, 3, 10)
}

func TestConcurrentEditsProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	if err := AddUser(afero.NewOsFs(), path, "first@x.org", "{PLAIN}pw"); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEditHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	addMany(t, afero.NewOsFs(), path, 3, 10) // and this process at the same time
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper process: %v", err)
		}
	}
	got, err := ListUsers(afero.NewOsFs(), path)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, u := range got {
		if pid, _, ok := strings.Cut(strings.TrimPrefix(u, "g"), "-"); ok {
			if _, err := strconv.Atoi(pid); err == nil {
				pids[pid]++
			}
		}
	}
	if len(got) != 1+3*30 || len(pids) != 3 {
		t.Fatalf("%d users from %d processes, want 91 from 3: %v", len(got), len(pids), pids)
	}
}

// TestEditKeepsOwner: an edit by root keeps the file's owner and group, so
// a daemon reading the file through its group still can.
func TestEditKeepsOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	path := filepath.Join(t.TempDir(), "users")
	fs := afero.NewOsFs()
	if err := AddUser(fs, path, "alice@example.com", "{PLAIN}a"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 12345, 54321); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(fs, path, "bob@example.com", "{PLAIN}b"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid := fileOwner(st); uid != 12345 || gid != 54321 || st.Mode().Perm() != 0o640 {
		t.Errorf("after edit: owner %d:%d mode %v, want 12345:54321 0640", uid, gid, st.Mode().Perm())
	}
}

func TestEditWriteFailureLeavesFile(t *testing.T) {
	t.Parallel()
	base := afero.NewMemMapFs()
	if err := afero.WriteFile(base, "/users", []byte("alice@example.com:{PLAIN}a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ro := afero.NewReadOnlyFs(base)
	if err := AddUser(ro, "/users", "bob@example.com", "{PLAIN}b"); err == nil || !strings.Contains(err.Error(), "write users file") {
		t.Fatalf("AddUser on a read-only fs: %v", err)
	}
	if b, _ := afero.ReadFile(base, "/users"); string(b) != "alice@example.com:{PLAIN}a\n" {
		t.Errorf("file changed: %q", b)
	}
}

// TestAddUsers: one rewrite adds the new users, leaves listed ones alone
// (whatever their case) and reports them; a second run adds nothing; a bad
// entry writes nothing.
func TestAddUsers(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	const path = "/etc/popgate/users"
	if err := afero.WriteFile(fsys, path, []byte("# office\nBob@x.org:{PLAIN}old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	batch := []NewUser{
		{"alice@x.org", "{SHA512-CRYPT}$6$5Ae7s6VThkGQsFjG$Sj0V.0THB6QY7pYpa3WYHd433Ui0F0KemloUMugNXoO/Aapc54OlH81p9OOLVb.fOdUh4XQ4covNcE88RtU27/"},
		{"bob@x.org", "{PLAIN}new"},
		{"carol@x.org", "{MD5-CRYPT}$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8."},
	}
	present, err := AddUsers(fsys, path, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(present) != 1 || present[0] != "bob@x.org" {
		t.Errorf("present = %v, want [bob@x.org]", present)
	}
	want := "# office\nBob@x.org:{PLAIN}old\nalice@x.org:" + batch[0].Hash + "\ncarol@x.org:" + batch[2].Hash + "\n"
	got, _ := afero.ReadFile(fsys, path)
	if string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	present, err = AddUsers(fsys, path, batch)
	if err != nil || len(present) != 3 {
		t.Errorf("second run: present %v, %v; want all three", present, err)
	}
	if again, _ := afero.ReadFile(fsys, path); string(again) != want {
		t.Errorf("second run changed the file:\n%s", again)
	}
	if _, err := AddUsers(fsys, path, []NewUser{{"dave@x.org", "{PLAIN}a"}, {"eve@x.org", "{CRYPT}$1$bad"}}); err == nil {
		t.Error("a malformed hash was accepted")
	}
	if again, _ := afero.ReadFile(fsys, path); string(again) != want {
		t.Errorf("a failed batch changed the file:\n%s", again)
	}
}
