package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// dropPrivileges switches the process to user and group (names or numeric
// ids) after the listeners are bound: a process started as root keeps its
// sockets on ports below 1024 but loses every other root power. An empty
// group means the user's primary group. The supplementary groups are
// replaced by that one group. Since Go 1.16 the set*id calls apply to all
// threads on Linux. Afterwards it checks that root cannot be regained.
//
// When the process already runs as exactly that user and group (systemd's
// User=, or a container's USER) it does nothing; otherwise it needs root.
func dropPrivileges(userName, groupName string) error {
	uid, gid, err := lookupIDs(userName, groupName)
	if err != nil {
		return err
	}
	if uid == 0 {
		return fmt.Errorf("privilege drop: user %q is root; name an unprivileged user", userName)
	}
	if os.Geteuid() == uid && os.Getuid() == uid && os.Getegid() == gid && os.Getgid() == gid {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("privilege drop to %s:%s needs root, but popgate runs as uid %d: start it as root or as that user", userName, groupNameOr(groupName, gid), os.Geteuid())
	}
	// Groups first: once the uid is dropped, changing groups is refused.
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("privilege drop: setgroups(%d): %w", gid, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("privilege drop: setgid(%d): %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("privilege drop: setuid(%d): %w", uid, err)
	}
	if os.Getuid() != uid || os.Geteuid() != uid || os.Getgid() != gid || os.Getegid() != gid {
		return fmt.Errorf("privilege drop: still uid %d/%d gid %d/%d after switching to %d:%d",
			os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid(), uid, gid)
	}
	if err := syscall.Setuid(0); err == nil {
		return errors.New("privilege drop: root could be regained after setuid")
	}
	return nil
}

// lookupIDs resolves user and group to numeric ids. A number that is not
// in /etc/passwd or /etc/group is taken as it is, because a FROM scratch
// image has neither file; a name must exist.
func lookupIDs(userName, groupName string) (uid, gid int, err error) {
	if userName == "" {
		return 0, 0, errors.New("privilege drop: no user given")
	}
	gid = -1
	if u, err := user.Lookup(userName); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	} else if n, nerr := parseID(userName); nerr == nil {
		uid = n
		if u, err := user.LookupId(userName); err == nil {
			gid, _ = strconv.Atoi(u.Gid)
		}
	} else {
		return 0, 0, fmt.Errorf("privilege drop: unknown user %q: %w", userName, err)
	}
	switch {
	case groupName != "":
		if g, err := user.LookupGroup(groupName); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else if n, nerr := parseID(groupName); nerr == nil {
			gid = n
		} else {
			return 0, 0, fmt.Errorf("privilege drop: unknown group %q: %w", groupName, err)
		}
	case gid < 0:
		return 0, 0, fmt.Errorf("privilege drop: user %q is not in /etc/passwd, so its group must be given", userName)
	}
	return uid, gid, nil
}

// parseID parses a numeric user or group id.
func parseID(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

func groupNameOr(name string, gid int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(gid)
}

// handOverDataDir gives userName:groupName what a root-started popgate
// created in data_dir before dropping privileges: data_dir itself, the
// mail_dir root (<data_dir>/mail by default), data_dir's queue, state and
// tls directories, and the files directly in state
// and tls (grants, control socket, self-signed certificate) and the users
// file (with its .lock) when it lives in data_dir. It does not descend into mail or queue:
// what is in them was written by the unprivileged process already. Symbolic
// links are never followed or changed, so a link planted in data_dir cannot
// hand over a file elsewhere. A users file outside data_dir is not changed,
// but it must be readable by the user, since it is re-read when it changes.
// Call it after assemble and before dropPrivileges.
func handOverDataDir(cfg *Config, userName, groupName string) error {
	uid, gid, err := lookupIDs(userName, groupName)
	if err != nil {
		return err
	}
	paths := []string{cfg.DataDir, cfg.mailDir()}
	for _, sub := range []string{"queue", "state", "tls"} {
		dir := filepath.Join(cfg.DataDir, sub)
		paths = append(paths, dir)
		if sub != "state" && sub != "tls" {
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("privilege drop: %w", err)
		}
		for _, e := range entries {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	// The maildrop directory only: its files stay their writers'.
	paths = append(paths, cfg.maildropDir())
	users := cfg.usersFile()
	if inside(cfg.DataDir, users) {
		// With the lock `popgate user` takes beside it (auth's edit lock),
		// so the user may edit it as well.
		paths = append(paths, users, users+".lock")
	} else if err := readableBy(users, uid, gid); err != nil {
		return fmt.Errorf("privilege drop: users.file: %w", err)
	}
	for _, p := range paths {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("privilege drop: %w", err)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			continue
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("privilege drop: hand %s to %d:%d: %w", p, uid, gid, err)
		}
	}
	return nil
}

// inside reports whether path is dir or below it (lexically).
func inside(dir, path string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !filepath.IsAbs(rel) && (len(rel) < 3 || rel[:3] != ".."+string(filepath.Separator))
}

// readableBy reports, from its mode bits, whether uid with the one group
// gid may read path.
func readableBy(path string, uid, gid int) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil // not a Unix stat: cannot tell, let the server find out
	}
	mode := st.Mode().Perm()
	switch {
	case int(sys.Uid) == uid && mode&0o400 != 0,
		int(sys.Uid) != uid && int(sys.Gid) == gid && mode&0o040 != 0,
		int(sys.Uid) != uid && int(sys.Gid) != gid && mode&0o004 != 0:
		return nil
	}
	return fmt.Errorf("%s (owner %d:%d, mode %v) is not readable by %d:%d", path, sys.Uid, sys.Gid, mode, uid, gid)
}
