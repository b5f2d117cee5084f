package auth

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/afero"
)

// ReloadInterval is how often, at most, Users looks at the file's mtime and
// size to notice an edit.
const ReloadInterval = time.Second

// Users is a users file kept in memory. It re-reads the file when its
// mtime or size changed, checking at most once per ReloadInterval when it
// is used, so `popgate user add` takes effect without a restart. A new
// version that does not parse is logged and the previous one stays in use.
// Safe for concurrent use.
type Users struct {
	fs     afero.Fs
	path   string
	now    func() time.Time
	logger *slog.Logger

	mu        sync.Mutex
	table     *userTable
	modTime   time.Time // of the version last tried, good or bad
	size      int64
	lastCheck time.Time
	lastErr   string // last reload error logged, so a lasting one is logged once
}

// NewUsers loads the users file at path. now is the clock (time.Now in
// production); logger receives reload errors and the {PLAIN} warning (nil
// discards them).
// Errors name the file and the line.
func NewUsers(fs afero.Fs, path string, now func() time.Time, logger *slog.Logger) (*Users, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u := &Users{fs: fs, path: path, now: now, logger: logger}
	st, err := fs.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("auth: users file: %w", err)
	}
	t, err := u.read()
	if err != nil {
		return nil, err
	}
	u.table, u.modTime, u.size, u.lastCheck = t, st.ModTime(), st.Size(), now()
	return u, nil
}

// read reads and parses the file, logging the {PLAIN} and MD5-crypt
// warnings once.
func (u *Users) read() (*userTable, error) {
	f, err := u.fs.Open(u.path)
	if err != nil {
		return nil, fmt.Errorf("auth: users file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUsersFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: users file %s: %w", u.path, err)
	}
	t, err := parseUsers(data)
	if err != nil {
		return nil, fmt.Errorf("auth: users file %s: %w", u.path, err)
	}
	if len(t.plainLines) > 0 {
		// Name a few lines, not thousands: enough to find them.
		u.logger.Warn("users file has plaintext passwords", "path", u.path,
			"count", len(t.plainLines), "first_lines", t.plainLines[:min(len(t.plainLines), 5)])
	}
	if len(t.md5Lines) > 0 {
		// Accepted so that migrated users can log in; each should get a
		// new password (`popgate user passwd`), which is stored as Argon2id.
		u.logger.Warn("users file has weak MD5-crypt passwords", "path", u.path,
			"count", len(t.md5Lines), "first_lines", t.md5Lines[:min(len(t.md5Lines), 5)])
	}
	return t, nil
}

// current returns the table in force, first reloading the file if a check
// is due and it changed.
func (u *Users) current() *userTable {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	if now.Sub(u.lastCheck) < ReloadInterval && !now.Before(u.lastCheck) {
		return u.table
	}
	u.lastCheck = now
	st, err := u.fs.Stat(u.path)
	if err != nil {
		u.reloadFailed(fmt.Errorf("auth: users file: %w", err))
		return u.table
	}
	if st.ModTime().Equal(u.modTime) && st.Size() == u.size {
		return u.table
	}
	t, err := u.read()
	var le *LineError
	if errors.As(err, &le) {
		// The content is broken: remember this version so it is not
		// re-parsed every second; the next edit is tried again.
		u.modTime, u.size = st.ModTime(), st.Size()
	}
	if err != nil {
		// Unreadable (permissions, a race with an editor): tried again
		// at the next check.
		u.reloadFailed(err)
		return u.table
	}
	u.modTime, u.size, u.table, u.lastErr = st.ModTime(), st.Size(), t, ""
	u.logger.Info("users file reloaded", "path", u.path, "users", len(t.users))
	return t
}

// reloadFailed logs a reload error unless it is the one logged last.
func (u *Users) reloadFailed(err error) {
	if msg := err.Error(); msg != u.lastErr {
		u.lastErr = msg
		u.logger.Error("users file reload failed", "path", u.path, "error", err)
	}
}

// Exists reports whether user (any case) is in the file.
func (u *Users) Exists(user string) bool {
	_, ok := u.current().users[CanonicalUsername(user)]
	return ok
}

// Len is the number of users in force.
func (u *Users) Len() int { return len(u.current().users) }

// errNoUser is verify's internal answer for a missing user.
var errNoUser = errors.New("no such user")

// verify checks password for user. For a missing user it still verifies
// against a dummy hash of the same cost and returns errNoUser; a wrong
// password gives ok=false and no error. Other errors are internal.
func (u *Users) verify(user, password string) (canonical string, ok bool, err error) {
	t := u.current()
	name := CanonicalUsername(user)
	e, found := t.users[name]
	if !found {
		d, err := t.dummy()
		if err != nil {
			return "", false, fmt.Errorf("auth: dummy hash: %w", err)
		}
		d.verify(password)
		return "", false, errNoUser
	}
	return e.name, e.v.verify(password), nil
}

// plain returns a {PLAIN} user's password.
func (u *Users) plain(user string) (string, bool) {
	e, ok := u.current().users[CanonicalUsername(user)]
	if !ok {
		return "", false
	}
	p, ok := e.v.(plainHash)
	return string(p), ok
}
