// Package shadow reads a Unix system's /etc/passwd and /etc/shadow and
// decides, account by account, which can become popgate users with the
// password hash they already have.
package shadow

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// MaxFileSize bounds what a parser reads: a passwd file of a large site is
// megabytes; more means the wrong file was named.
const MaxFileSize = 64 << 20

// Field counts fixed by passwd(5) and shadow(5).
const (
	passwdFields = 7 // name:password:UID:GID:GECOS:directory:shell
	shadowFields = 9 // name:password:lastchg:min:max:warn:inactive:expire:reserved
)

// LineError is a problem with one line of a named file; it prints as
// "file:line: message", as compilers and pwck do.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// PasswdEntry is one account of /etc/passwd.
type PasswdEntry struct {
	Name     string
	Password string // "x" when the hash is in /etc/shadow
	UID      int
	Line     int
}

// ShadowEntry is one account of /etc/shadow.
type ShadowEntry struct {
	Name string
	Hash string
	// Expire is the account's expiry in days since 1970-01-01 (shadow(5)
	// field 8); -1 when empty (never).
	Expire int64
	Line   int
}

// readLines reads r whole (up to limit bytes) and calls fn with each line
// and its number; blank lines are skipped. NIS compat lines ("+…", "-…")
// are passed on for the caller to report.
func readLines(r io.Reader, file string, limit int, fn func(line string, n int) error) error {
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err // it names the file already
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(data) > limit {
		return fmt.Errorf("%s: larger than %d bytes: not a passwd or shadow file", file, limit)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		line := bytes.Count(data[:bytes.IndexByte(data, 0)], []byte{'\n'}) + 1
		return &LineError{file, line, "NUL byte: not a text file"}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, limit+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if err := fn(line, n); err != nil {
			return err
		}
	}
	return sc.Err()
}

// ParsePasswd parses an /etc/passwd file; file names it in errors. A line
// without exactly seven fields, with an empty name or a UID that is not a
// number is an error naming file and line. Each name appears once.
func ParsePasswd(r io.Reader, file string) ([]PasswdEntry, error) {
	var out []PasswdEntry
	seen := map[string]int{}
	err := readLines(r, file, MaxFileSize, func(line string, n int) error {
		f := strings.Split(line, ":")
		if len(f) != passwdFields {
			return &LineError{file, n, fmt.Sprintf("%d fields, want %d (name:password:UID:GID:GECOS:directory:shell)", len(f), passwdFields)}
		}
		if isNIS(f[0]) {
			out = append(out, PasswdEntry{Name: f[0], UID: -1, Line: n})
			return nil
		}
		if f[0] == "" {
			return &LineError{file, n, "empty user name"}
		}
		uid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return &LineError{file, n, fmt.Sprintf("user %s: UID %q is not a number", f[0], f[2])}
		}
		if prev, dup := seen[f[0]]; dup {
			return &LineError{file, n, fmt.Sprintf("user %s listed again (first on line %d)", f[0], prev)}
		}
		seen[f[0]] = n
		out = append(out, PasswdEntry{Name: f[0], Password: f[1], UID: int(uid), Line: n})
		return nil
	})
	return out, err
}

// ParseShadow parses an /etc/shadow file into entries by name. A line
// without exactly nine fields, with an empty name, a non-numeric expiry
// or a name listed twice is an error naming file and line.
func ParseShadow(r io.Reader, file string) (map[string]ShadowEntry, error) {
	out := map[string]ShadowEntry{}
	err := readLines(r, file, MaxFileSize, func(line string, n int) error {
		f := strings.Split(line, ":")
		if len(f) != shadowFields {
			return &LineError{file, n, fmt.Sprintf("%d fields, want %d (name:password:lastchg:min:max:warn:inactive:expire:)", len(f), shadowFields)}
		}
		if isNIS(f[0]) {
			return nil
		}
		if f[0] == "" {
			return &LineError{file, n, "empty user name"}
		}
		e := ShadowEntry{Name: f[0], Hash: f[1], Expire: -1, Line: n}
		if f[7] != "" {
			days, err := strconv.ParseInt(f[7], 10, 64)
			if err != nil || days < 0 {
				return &LineError{file, n, fmt.Sprintf("user %s: expiry %q is not a number of days", f[0], f[7])}
			}
			e.Expire = days
		}
		if prev, dup := out[f[0]]; dup {
			return &LineError{file, n, fmt.Sprintf("user %s listed again (first on line %d)", f[0], prev.Line)}
		}
		out[f[0]] = e
		return nil
	})
	return out, err
}

// isNIS reports a NIS compat entry ("+", "+name", "+@netgroup", "-name").
func isNIS(name string) bool {
	return strings.HasPrefix(name, "+") || strings.HasPrefix(name, "-")
}
