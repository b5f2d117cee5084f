package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/popgate/popgate/maildir/durable"
	"github.com/spf13/afero"
)

// newUsersFileMode is the mode of a users file that AddUser creates: it
// holds password hashes, so only the owner reads it. An existing file's
// mode is kept.
const newUsersFileMode fs.FileMode = 0o600

// Sentinel errors of the editing functions (errors.Is).
var (
	ErrUserExists = errors.New("user already exists")
	ErrNoSuchUser = errors.New("no such user")
)

// editLocks holds one mutex per users-file path, serialising edits within
// this process. It is the package's one piece of shared state: the editing
// API is plain functions (as the CLI uses them), and on a filesystem other
// than the OS one there is no flock to fall back on.
var editLocks sync.Map // cleaned path → *sync.Mutex

// lockUsersFile takes the in-process mutex for path and, on the real OS
// filesystem, an exclusive flock on the sidecar "<path>.lock", so two
// processes editing at once cannot lose each other's lines. The sidecar
// is never removed: removing it would let a waiter lock a deleted inode.
func lockUsersFile(fsys afero.Fs, path string) (func(), error) {
	m, _ := editLocks.LoadOrStore(filepath.Clean(path), new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	if _, ok := fsys.(*afero.OsFs); !ok {
		return mu.Unlock, nil
	}
	release, err := flockFile(path + ".lock")
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return func() { release(); mu.Unlock() }, nil
}

// checkNewEntry validates what AddUser and SetPassword put in the file.
func checkNewEntry(user, hash string) (string, error) {
	if err := ValidateUsername(user); err != nil {
		return "", err
	}
	name := CanonicalUsername(user)
	if err := ValidateUsername(name); err != nil {
		return "", err
	}
	if strings.ContainsAny(hash, ":\r\n") {
		return "", errors.New("password hash contains ':' or a line break, which the users file cannot hold")
	}
	if strings.ContainsFunc(hash, unicode.IsControl) {
		return "", errors.New("password hash contains a control character")
	}
	if _, err := parseHash(hash); err != nil {
		return "", fmt.Errorf("password hash: %w", err)
	}
	return name, nil
}

// AddUser appends user with the stored hash (e.g. from HashPassword) to
// the users file at path, creating the file (mode 0600) if it is missing.
// Adding a user who is already listed fails with ErrUserExists.
func AddUser(fsys afero.Fs, path, user, hash string) error {
	name, err := checkNewEntry(user, hash)
	if err != nil {
		return fmt.Errorf("auth: add user %q: %w", user, err)
	}
	return editUsers(fsys, path, true, func(lines []string) ([]string, error) {
		if i := findUser(lines, name); i >= 0 {
			return nil, fmt.Errorf("auth: add user %s: %w (line %d)", name, ErrUserExists, i+1)
		}
		return append(lines, name+":"+hash), nil
	})
}

// NewUser is one user for AddUsers: an address and its stored hash.
type NewUser struct {
	User, Hash string
}

// AddUsers appends every user not yet listed in the users file at path,
// in one atomic rewrite under the lock, creating the file (mode 0600) if it
// is missing. Users already present are left alone and returned, lowercased,
// in the order given; running it again with the same users adds nothing.
// An invalid entry fails the whole call before anything is written.
func AddUsers(fsys afero.Fs, path string, users []NewUser) (present []string, err error) {
	names := make([]string, len(users))
	for i, u := range users {
		if names[i], err = checkNewEntry(u.User, u.Hash); err != nil {
			return nil, fmt.Errorf("auth: add user %q: %w", u.User, err)
		}
	}
	err = editUsers(fsys, path, true, func(lines []string) ([]string, error) {
		present = present[:0]
		listed := map[string]bool{}
		for _, l := range lines {
			if fl, err := splitLine(l); err == nil && fl.isEntry {
				listed[CanonicalUsername(fl.user)] = true
			}
		}
		for i, u := range users {
			if listed[names[i]] {
				present = append(present, names[i])
				continue
			}
			listed[names[i]] = true
			lines = append(lines, names[i]+":"+u.Hash)
		}
		return lines, nil
	})
	if err != nil {
		return nil, err
	}
	return present, nil
}

// SetPassword replaces user's stored hash, keeping the line's other fields.
// A user not in the file gives ErrNoSuchUser.
func SetPassword(fsys afero.Fs, path, user, hash string) error {
	name, err := checkNewEntry(user, hash)
	if err != nil {
		return fmt.Errorf("auth: set password of %q: %w", user, err)
	}
	return editUsers(fsys, path, false, func(lines []string) ([]string, error) {
		i := findUser(lines, name)
		if i < 0 {
			return nil, fmt.Errorf("auth: set password of %s: %w", name, ErrNoSuchUser)
		}
		line, cr := strings.CutSuffix(lines[i], "\r")
		fl, _ := splitLine(line)
		lines[i] = fl.user + ":" + hash + fl.rest
		if cr {
			lines[i] += "\r"
		}
		return lines, nil
	})
}

// DeleteUser removes user's line. A user not in the file gives ErrNoSuchUser.
func DeleteUser(fsys afero.Fs, path, user string) error {
	name := CanonicalUsername(user)
	return editUsers(fsys, path, false, func(lines []string) ([]string, error) {
		i := findUser(lines, name)
		if i < 0 {
			return nil, fmt.Errorf("auth: delete user %s: %w", name, ErrNoSuchUser)
		}
		return slices.Delete(lines, i, i+1), nil
	})
}

// ListUsers returns the users of the file in file order, lowercased. A file
// that would not load gives the same error (with its line) as loading it.
func ListUsers(fsys afero.Fs, path string) ([]string, error) {
	data, err := afero.ReadFile(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("auth: list users: %w", err)
	}
	t, err := parseUsers(data)
	if err != nil {
		return nil, fmt.Errorf("auth: list users: %s: %w", path, err)
	}
	entries := make([]*userEntry, 0, len(t.users))
	for _, e := range t.users {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *userEntry) int { return a.line - b.line })
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	return names, nil
}

// findUser returns the index of the line listing name, or -1. Comments,
// blank lines and lines it cannot split are skipped (and kept as they are).
func findUser(lines []string, name string) int {
	for i, l := range lines {
		fl, err := splitLine(l)
		if err == nil && fl.isEntry && CanonicalUsername(fl.user) == name {
			return i
		}
	}
	return -1
}

// editUsers runs edit on the file's lines under the lock, re-reading the
// file after taking it, and replaces the file atomically. Lines edit does
// not touch are written back byte for byte; the file always ends in a
// newline.
func editUsers(fsys afero.Fs, path string, create bool, edit func([]string) ([]string, error)) error {
	unlock, err := lockUsersFile(fsys, path)
	if err != nil {
		return err
	}
	defer unlock()
	data, err := afero.ReadFile(fsys, path)
	switch {
	case errors.Is(err, os.ErrNotExist) && create:
		data = nil
	case err != nil:
		return fmt.Errorf("auth: users file: %w", err)
	}
	if len(data) > maxUsersFileSize {
		return fmt.Errorf("auth: users file %s is larger than %d bytes", path, maxUsersFileSize)
	}
	var lines []string
	if len(data) > 0 {
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	lines, err = edit(lines)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := replaceFile(fsys, path, []byte(b.String())); err != nil {
		return fmt.Errorf("auth: write users file: %w", err)
	}
	return nil
}

// replaceFile writes data over path the way durable.WriteFile does (temp
// file in the same directory, fsync, rename, fsync the directory) and also
// keeps the old file's mode, owner and group: an administrator running
// `popgate user add` as root must not leave a root-owned file that the
// daemon's user can no longer read. A new file gets mode 0600.
func replaceFile(fsys afero.Fs, path string, data []byte) (err error) {
	perm, uid, gid := newUsersFileMode, -1, -1
	if st, statErr := fsys.Stat(path); statErr == nil {
		perm = st.Mode().Perm()
		uid, gid = fileOwner(st)
	}
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp."+durable.UniqueSuffix())
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	// OpenFile's perm is masked by the umask; make the mode exactly perm.
	if err = fsys.Chmod(tmp, perm); err != nil {
		return err
	}
	if uid >= 0 {
		if err = fsys.Chown(tmp, uid, gid); err != nil {
			return fmt.Errorf("keep owner %d:%d of %s: %w", uid, gid, path, err)
		}
	}
	if err = fsys.Rename(tmp, path); err != nil {
		return err
	}
	return durable.SyncDir(fsys, dir)
}
