package maildir

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"

	"github.com/popgate/popgate/maildir/durable"
)

// Errors callers test for with errors.Is.
var (
	// ErrLocked means another session (in this process or another) holds
	// the mailbox; POP3 answers it with [IN-USE] (RFC 2449 §8.1.1).
	ErrLocked = errors.New("maildir: mailbox locked")
	// ErrNotFound means a message file is gone, e.g. deleted by another program.
	ErrNotFound = errors.New("maildir: message not found")
	// ErrBadName means a domain or local part cannot name a maildir safely.
	ErrBadName = errors.New("maildir: bad mailbox name")
)

// Permissions of what the store creates: mail is private to its owner.
const (
	dirPerm  = 0o700
	filePerm = 0o600
)

// maxNameLen is the longest domain or local part accepted as a directory
// name (NAME_MAX on common filesystems).
const maxNameLen = 255

// Maildir subdirectories (maildir(5)).
const (
	subTmp = "tmp"
	subNew = "new"
	subCur = "cur"
)

// Options configure a Store; zero values get defaults.
type Options struct {
	// Hostname goes into generated file names; default os.Hostname().
	Hostname string
	// Now is the clock for file names; default time.Now.
	Now func() time.Time
	// Instance is a stable id of this popgate instance (letters, digits,
	// '-', '.'; at most 20 bytes are used), the same
	// across its restarts and different from every other instance sharing
	// the maildirs. With it, a restarted instance takes over at once the
	// leases its killed predecessor left; without it, they expire. Only
	// one Store per Instance may exist at a time (`popgate serve` makes
	// one): a second, say a CLI tool beside the server, would take the
	// server's live leases. Empty: none.
	Instance string
	// LeaseTTL is how long a session's claim on a mailbox lasts unless
	// renewed (see Mailbox.Lock); default DefaultLeaseTTL. Instances
	// sharing the maildirs need clocks in step to well within it.
	LeaseTTL time.Duration
	// LeaseRenew is how often a held claim is renewed; default LeaseTTL/3.
	LeaseRenew time.Duration
	// Logger receives warnings (unreadable files, corrupt indexes);
	// default discards.
	Logger *slog.Logger
}

// Address names one local mailbox.
type Address struct {
	Local, Domain string
}

// Store is the tree of maildirs under root: <root>/<domain>/<local>/{cur,new,tmp}.
// It is safe for concurrent use.
type Store struct {
	fs          afero.Fs
	root        string
	hostname    string
	now         func() time.Time
	instance    string // Options.Instance
	incarnation string // random id of this Store, in lease owners
	leaseTTL    time.Duration
	leaseRenew  time.Duration
	log         *slog.Logger
	pid         int
	seq         atomic.Uint64
	bufs        sync.Pool // *writeBuf, scratch space for deliveries
	ready       sync.Map  // maildir path → struct{}: known to be complete

	mu      sync.Mutex
	locked  map[string]bool       // maildir paths locked by this process
	indexes map[string]*sizeIndex // size indexes loaded, by maildir path
}

// NewStore returns a Store for the maildirs under root on fs.
func NewStore(fs afero.Fs, root string, opts Options) *Store {
	host := opts.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	s := &Store{
		fs:          fs,
		root:        filepath.Clean(root),
		hostname:    sanitizeHostname(host),
		now:         opts.Now,
		instance:    opts.Instance,
		incarnation: randomHex(4),
		leaseTTL:    opts.LeaseTTL,
		leaseRenew:  opts.LeaseRenew,
		log:         opts.Logger,
		pid:         os.Getpid(),
		locked:      make(map[string]bool),
		bufs:        sync.Pool{New: newWriteBuf},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.instance != "" {
		s.instance = sanitizeHostname(s.instance) // no ':', fits a lease owner
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = DefaultLeaseTTL
	}
	if s.leaseRenew <= 0 {
		s.leaseRenew = s.leaseTTL / 3
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// MailboxPath returns the maildir directory of local@domain. The domain is
// lowercased; either part must be non-empty, at most 255 bytes, free of '/',
// "..", NUL and other control characters, and not start with '.'.
// Otherwise the error wraps ErrBadName.
func (s *Store) MailboxPath(domain, local string) (string, error) {
	domain = strings.ToLower(domain)
	if err := checkComponent("domain", domain); err != nil {
		return "", err
	}
	if err := checkComponent("local part", local); err != nil {
		return "", err
	}
	return filepath.Join(s.root, domain, local), nil
}

func checkComponent(what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: empty %s", ErrBadName, what)
	case len(v) > maxNameLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrBadName, what, maxNameLen)
	case strings.Contains(v, ".."):
		return fmt.Errorf("%w: %s %q contains \"..\"", ErrBadName, what, v)
	case v[0] == '.':
		return fmt.Errorf("%w: %s %q starts with '.'", ErrBadName, what, v)
	case strings.ContainsAny(v, `/\`):
		return fmt.Errorf("%w: %s %q contains a path separator", ErrBadName, what, v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return fmt.Errorf("%w: %s %q contains control character %#02x", ErrBadName, what, v, v[i])
		}
	}
	return nil
}

// ensureMaildir creates dir and its cur/, new/ and tmp/ when missing, and
// fsyncs every directory whose entries changed so a new maildir survives a
// crash together with the first message delivered into it.
func (s *Store) ensureMaildir(dir string) error {
	// A maildir seen complete is not checked again (three stats a
	// delivery); Deliver forgets it when a delivery into it fails, so one
	// removed behind popgate's back is made again at the next try.
	if _, ok := s.ready.Load(dir); ok {
		return nil
	}
	if err := s.makeMaildir(dir); err != nil {
		return err
	}
	s.ready.Store(dir, struct{}{})
	return nil
}

// makeMaildir creates what is missing of dir's cur/, new/ and tmp/.
func (s *Store) makeMaildir(dir string) error {
	complete := true
	for _, sub := range []string{subNew, subTmp, subCur} {
		if st, err := s.fs.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			complete = false
			break
		}
	}
	if complete {
		return nil
	}
	// Find the directories that will be created, outermost first.
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := s.fs.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		created = append(created, d)
	}
	for _, sub := range []string{subCur, subNew, subTmp} {
		p := filepath.Join(dir, sub)
		if err := s.fs.MkdirAll(p, dirPerm); err != nil {
			return fmt.Errorf("maildir: create %s: %w", p, err)
		}
	}
	// Sync the parents of what was created, and the maildir itself.
	syncs := map[string]bool{dir: true}
	for _, d := range created {
		syncs[filepath.Dir(d)] = true
	}
	for d := range syncs {
		if err := durable.SyncDir(s.fs, d); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	return nil
}
