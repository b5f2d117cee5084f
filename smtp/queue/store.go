package queue

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/popgate/popgate/maildir/durable"
	"github.com/spf13/afero"
)

// File name suffixes and the quarantine directory for corrupt envelopes.
const (
	msgSuffix     = ".msg"
	envSuffix     = ".env"
	quarantineDir = "quarantine"
	filePerm      = 0o600
	dirPerm       = 0o700
)

func (q *Queue) msgPath(id string) string { return filepath.Join(q.cfg.Dir, id+msgSuffix) }
func (q *Queue) envPath(id string) string { return filepath.Join(q.cfg.Dir, id+envSuffix) }

// newID returns a fresh queue id: the time in nanoseconds and 32 random
// bits, hex, so ids sort by arrival and never collide across restarts.
func newID(now time.Time) (string, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("queue: id: %w", err)
	}
	return fmt.Sprintf("%016x%s", uint64(now.UnixNano()), hex.EncodeToString(r[:])), nil
}

// writeMsg writes the body straight to <id>.msg (a recycled free file or
// a new one, cut to the body's length) and fsyncs it. No
// temporary name or directory sync is needed: without its .env the file
// means nothing (a crash leaves an orphan that scan removes), and the
// directory sync of the .env write that follows makes both names durable
// before Enqueue returns.
func (q *Queue) writeMsg(id string, r io.Reader) (int64, bool, error) {
	f, err := q.openNew(q.msgPath(id))
	if err != nil {
		return 0, false, fmt.Errorf("queue: spool %s: %w", id, err)
	}
	nr := q.getNorm(r)
	defer q.putNorm(nr)
	bp := q.getBuf()
	defer q.bufs.Put(bp)
	// Writes go out in whole buffers; writerOnly hides os.File.ReadFrom,
	// whose fallback would allocate a buffer of its own.
	_, err = io.CopyBuffer(writerOnly{f}, nr, *bp)
	if err == nil {
		err = f.Truncate(nr.size) // cut a recycled file's old tail
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, false, fmt.Errorf("queue: spool %s: %w", id, err)
	}
	return nr.size, nr.eightBit, nil
}

// writeEnv replaces the envelope file durably.
func (q *Queue) writeEnv(e *envelope) error {
	b, err := encodeEnvelope(e)
	if err != nil {
		return err
	}
	if err := durable.WriteBytes(q.cfg.Fs, q.envPath(e.ID), b, filePerm); err != nil {
		return fmt.Errorf("queue: write envelope %s: %w", e.ID, err)
	}
	return nil
}

// createEnv writes a new message's envelope straight to <id>.env (a free
// file renamed there, or a new one; no temporary name: nothing was
// acknowledged for it yet, and a torn one found at start fails to decode
// or names another id, and is quarantined), fsyncs it and then
// the directory, which makes the names of both the .env and the .msg
// written before it durable with one (shared) sync.
func (q *Queue) createEnv(e *envelope) error {
	b, err := encodeEnvelope(e)
	if err != nil {
		return err
	}
	f, err := q.openNew(q.envPath(e.ID))
	if err != nil {
		return fmt.Errorf("queue: create envelope %s: %w", e.ID, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Truncate(int64(len(b))) // cut a recycled file's old tail
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = q.dirSync.sync()
	}
	if err != nil {
		_ = q.cfg.Fs.Remove(q.envPath(e.ID))
		return fmt.Errorf("queue: create envelope %s: %w", e.ID, err)
	}
	return nil
}

// readEnv loads and checks an envelope; a missing file is ErrNotFound.
func (q *Queue) readEnv(id string) (*envelope, error) {
	f, err := q.cfg.Fs.Open(q.envPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("queue: %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: open envelope %s: %w", id, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEnvelopeBytes+1))
	if err != nil {
		return nil, fmt.Errorf("queue: read envelope %s: %w", id, err)
	}
	e, err := decodeEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if e.ID != id {
		return nil, fmt.Errorf("%w: queue: envelope %s names id %s", errCorrupt, id, e.ID)
	}
	return e, nil
}

// errCorrupt marks an envelope that cannot be trusted.
var errCorrupt = errors.New("corrupt envelope")

// removeFiles removes a finished or deleted message: the envelope first
// and then the body, with one directory sync for both. If a crash loses
// the removals, both files come back and the message is sent again (a
// duplicate, never a loss); if it keeps only the second, the envelope
// without its body is quarantined at the next start. recycle keeps both
// as free files for the next message; only the delivery that read them
// last may ask for that, since a reader still holding the body open would
// see the next message's content (List copes with a recycled envelope).
func (q *Queue) removeFiles(id string, recycle bool) error {
	rm := q.cfg.Fs.Remove
	if recycle {
		rm = q.release
	}
	if err := rm(q.envPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	if err := rm(q.msgPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue: remove body %s: %w", id, err)
	}
	if err := q.dirSync.sync(); err != nil {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	return nil
}

// quarantine moves a message's files aside so a corrupt envelope is kept
// for a human but never retried (and never crashes the loop).
func (q *Queue) quarantine(name string, cause error) {
	qdir := filepath.Join(q.cfg.Dir, quarantineDir)
	q.log.Error("queue envelope quarantined", "file", name, "err", cause)
	if err := q.cfg.Fs.MkdirAll(qdir, dirPerm); err != nil {
		q.log.Error("queue quarantine failed", "file", name, "err", err)
		return
	}
	base := strings.TrimSuffix(name, envSuffix)
	for _, n := range []string{base + envSuffix, base + msgSuffix} {
		err := q.cfg.Fs.Rename(filepath.Join(q.cfg.Dir, n), filepath.Join(qdir, n))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			q.log.Error("queue quarantine failed", "file", n, "err", err)
		}
	}
	_ = durable.SyncDir(q.cfg.Fs, q.cfg.Dir)
}

// scan rebuilds the schedule from the directory: envelopes are scheduled,
// corrupt ones quarantined, bodies without an envelope (never
// acknowledged, or finished) and temporary files removed.
func (q *Queue) scan() error {
	ents, err := afero.ReadDir(q.cfg.Fs, q.cfg.Dir)
	if err != nil {
		return fmt.Errorf("queue: scan %s: %w", q.cfg.Dir, err)
	}
	envs := map[string]bool{}
	for _, fi := range ents {
		if n := fi.Name(); !fi.IsDir() && strings.HasSuffix(n, envSuffix) && validID(strings.TrimSuffix(n, envSuffix)) {
			envs[strings.TrimSuffix(n, envSuffix)] = true
		}
	}
	for _, fi := range ents {
		n := fi.Name()
		if fi.IsDir() {
			continue
		}
		switch {
		case isFreeName(n):
			q.free.seen(n)
			if !q.free.add(filepath.Join(q.cfg.Dir, n)) {
				q.removeStray(n)
			}
		case strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp."):
			// A temporary file of an interrupted durable write.
			q.removeStray(n)
		case strings.HasSuffix(n, msgSuffix):
			if !envs[strings.TrimSuffix(n, msgSuffix)] {
				q.log.Info("queue orphan removed", "file", n)
				q.removeStray(n)
			}
		case strings.HasSuffix(n, envSuffix):
			id := strings.TrimSuffix(n, envSuffix)
			if !validID(id) {
				q.quarantine(n, fmt.Errorf("bad file name %q", n))
				continue
			}
			e, err := q.readEnv(id)
			if err == nil {
				if _, serr := q.cfg.Fs.Stat(q.msgPath(id)); serr != nil {
					err = fmt.Errorf("%w: body: %w", errCorrupt, serr)
				}
			}
			if err != nil {
				q.quarantine(n, err)
				continue
			}
			q.schedule(id, e.NextTry)
		}
	}
	return nil
}

func (q *Queue) removeStray(name string) {
	if err := q.cfg.Fs.Remove(filepath.Join(q.cfg.Dir, name)); err != nil {
		q.log.Error("queue remove stray file failed", "file", name, "err", err)
	}
}

// readHeader returns the original message's header block (up to
// maxHeaderBytes) for a DSN's text/rfc822-headers part.
func (q *Queue) readHeader(id string) ([]byte, error) {
	f, err := q.cfg.Fs.Open(q.msgPath(id))
	if err != nil {
		return nil, fmt.Errorf("queue: open body %s: %w", id, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHeaderBytes))
	if err != nil {
		return nil, fmt.Errorf("queue: read body %s: %w", id, err)
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return b[:i+2], nil
	}
	// No body separator within the limit: cut at the last full line.
	if i := bytes.LastIndex(b, []byte("\r\n")); i >= 0 {
		return b[:i+2], nil
	}
	return nil, nil
}

// copyBufSize is the size of the pooled buffers that bodies are copied
// through, to and from the spool.
const copyBufSize = 64 << 10

// getBuf returns a pooled copy buffer; put it back into q.bufs.
func (q *Queue) getBuf() *[]byte {
	if bp, ok := q.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, copyBufSize)
	return &b
}

// getNorm returns a pooled normReader reading src.
func (q *Queue) getNorm(src io.Reader) *normReader {
	if nr, ok := q.norms.Get().(*normReader); ok {
		nr.reset(src)
		return nr
	}
	return newNormReader(src)
}

func (q *Queue) putNorm(nr *normReader) {
	nr.reset(nil)
	q.norms.Put(nr)
}

// writerOnly and readerOnly hide ReadFrom and WriteTo from io.CopyBuffer,
// so the pooled buffer is used.
type writerOnly struct{ io.Writer }

type readerOnly struct{ io.Reader }
