package auth

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
)

// maxUsersFileSize bounds what a load reads; a users file of an office is
// kilobytes, so anything near this is a mistake (a log or a mailbox given
// as the users file).
const maxUsersFileSize = 64 << 20

// LineError is a users-file error tied to a line (1-based).
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// userEntry is one user of a loaded file.
type userEntry struct {
	name string // canonical (lowercase)
	line int
	v    verifier
}

// userTable is one parsed users file; it never changes after parsing, so a
// reload swaps the whole table.
type userTable struct {
	users      map[string]*userEntry
	plainLines []int // lines with {PLAIN} passwords, for the warning
	md5Lines   []int // lines with MD5-crypt hashes, weak: warned about too

	dummyOnce sync.Once
	dummyV    verifier
	dummyErr  error
}

// fileLine is a line split into the user name and password fields; rest
// holds Dovecot's further fields (":uid:gid:gecos:home:shell:extra"),
// including the leading ':', or "".
type fileLine struct {
	user, password, rest string
	isEntry              bool // false for comments and blank lines
}

// splitLine splits one line (without its newline). Comments start with '#'
// after optional white space; lines of white space are blank.
func splitLine(line string) (fileLine, error) {
	line = strings.TrimSuffix(line, "\r")
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return fileLine{}, nil
	}
	user, afterUser, ok := strings.Cut(line, ":")
	if !ok {
		return fileLine{}, fmt.Errorf("no ':' after the user name: want user@domain:{SCHEME}hash")
	}
	pw, rest, hasRest := strings.Cut(afterUser, ":")
	if hasRest {
		rest = ":" + rest
	}
	return fileLine{user: user, password: pw, rest: rest, isEntry: true}, nil
}

// parseUsers parses a whole users file. Every error names its line; a
// user listed twice (after lowercasing) names both lines.
func parseUsers(data []byte) (*userTable, error) {
	if len(data) > maxUsersFileSize {
		return nil, fmt.Errorf("users file is %d bytes, more than the %d allowed", len(data), maxUsersFileSize)
	}
	t := &userTable{users: make(map[string]*userEntry)}
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		fl, err := splitLine(string(raw))
		if err != nil {
			return nil, &LineError{Line: lineNo, Err: err}
		}
		if !fl.isEntry {
			continue
		}
		name := CanonicalUsername(fl.user)
		if err := ValidateUsername(name); err != nil {
			return nil, &LineError{Line: lineNo, Err: err}
		}
		if prev, dup := t.users[name]; dup {
			return nil, &LineError{Line: lineNo, Err: fmt.Errorf("user %s listed again (first on line %d)", name, prev.line)}
		}
		v, err := parseHash(fl.password)
		if err != nil {
			return nil, &LineError{Line: lineNo, Err: fmt.Errorf("user %s: %w", name, err)}
		}
		if v.scheme() == SchemePlain {
			t.plainLines = append(t.plainLines, lineNo)
		}
		if _, weak := v.(md5CryptHash); weak {
			t.md5Lines = append(t.md5Lines, lineNo)
		}
		t.users[name] = &userEntry{name: name, line: lineNo, v: v}
	}
	return t, nil
}

// dummy returns a verifier for users that do not exist: a hash of a random
// password in the scheme most users of this file have, with the cost of
// the first of them, so a wrong user name costs what a wrong password does.
// With no users it is a default {ARGON2ID} hash.
func (t *userTable) dummy() (verifier, error) {
	t.dummyOnce.Do(func() {
		counts := make(map[string]int)
		for _, e := range t.users {
			counts[e.v.scheme()]++
		}
		// Deterministic choice: the most common scheme, ties and the model
		// entry decided by the lowest line number.
		var best *userEntry
		for _, e := range t.users {
			if best == nil {
				best = e
				continue
			}
			c, bc := counts[e.v.scheme()], counts[best.v.scheme()]
			if c > bc || (c == bc && e.line < best.line) {
				best = e
			}
		}
		var model verifier
		if best != nil {
			model = best.v
		}
		if model == nil {
			stored, err := HashPassword(rand.Text())
			if err != nil {
				t.dummyErr = err
				return
			}
			model, t.dummyErr = parseHash(stored)
			if t.dummyErr != nil {
				return
			}
		}
		t.dummyV, t.dummyErr = model.dummy()
	})
	return t.dummyV, t.dummyErr
}
