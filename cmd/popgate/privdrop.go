package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
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
