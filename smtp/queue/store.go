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

// writeMsg spools a new message as one file, <id>.msg (a recycled free
// file or a new one): the body, then e (completed with the body's size,
// 8-bit flag and checksum) and the trailer (see spoolmeta.go), cut to
// length, fsynced once, and then the directory (a shared sync) so the
// name is durable before Enqueue returns. No temporary name is needed:
// until the file is whole and synced nothing was acknowledged for it, and
// a file found at start whose trailer, id, length or checksum do not
// match is an orphan that scan removes.
func (q *Queue) writeMsg(e *envelope, r io.Reader) error {
	id := e.ID
	f, err := q.openNew(q.msgPath(id))
	if err != nil {
		return fmt.Errorf("queue: spool %s: %w", id, err)
	}
	nr := q.getNorm(r)
	defer q.putNorm(nr)
	bp := q.getBuf()
	defer q.bufs.Put(bp)
	h := newBodyHash()
	// Writes go out in whole buffers; writerOnly hides os.File.ReadFrom,
	// whose fallback would allocate a buffer of its own.
	_, err = io.CopyBuffer(writerOnly{io.MultiWriter(f, h)}, nr, *bp)
	if err == nil && q.hookAfterMsg != nil {
		q.hookAfterMsg(id)
	}
	var size int64
	if err == nil {
		e.Size, e.EightBit, e.BodyCRC = nr.size, nr.eightBit, h.Sum32()
		var meta []byte
		meta, err = appendSpoolMeta((*bp)[:0], e)
		if err == nil {
			_, err = f.Write(meta)
			size = nr.size + int64(len(meta))
		}
	}
	if err == nil {
		err = f.Truncate(size) // cut a recycled file's old tail
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
		return fmt.Errorf("queue: spool %s: %w", id, err)
	}
	return nil
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

// readEnv loads and checks a message's envelope: its .env if there is
// one (written after a delivery attempt), else the initial envelope in
// its .msg. A message with neither file is ErrNotFound.
func (q *Queue) readEnv(id string) (*envelope, error) {
	f, err := q.cfg.Fs.Open(q.envPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return q.readMsgEnv(id)
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

// readMsgEnv reads the initial envelope from <id>.msg; a missing file is
// ErrNotFound, a bad one errCorrupt (and errNoMeta).
func (q *Queue) readMsgEnv(id string) (*envelope, error) {
	f, err := q.cfg.Fs.Open(q.msgPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("queue: %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: open body %s: %w", id, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("queue: stat body %s: %w", id, err)
	}
	e, err := readSpoolMeta(f, st.Size(), id)
	if errors.Is(err, errNoMeta) {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return e, err
}

// errCorrupt marks an envelope that cannot be trusted.
var errCorrupt = errors.New("corrupt envelope")

// removeFiles removes a finished or deleted message: the envelope first
// and then the body, with one directory sync for both. If a crash loses
// the removals, both files come back and the message is sent again (a
// duplicate, never a loss); if it keeps only the first, the .msg's own
// envelope sends it again (a duplicate); if only the second, the envelope
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
	base := strings.TrimSuffix(strings.TrimSuffix(name, envSuffix), msgSuffix)
	for _, n := range []string{base + envSuffix, base + msgSuffix} {
		err := q.cfg.Fs.Rename(filepath.Join(q.cfg.Dir, n), filepath.Join(qdir, n))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			q.log.Error("queue quarantine failed", "file", n, "err", err)
		}
	}
	_ = durable.SyncDir(q.cfg.Fs, q.cfg.Dir)
}

// scan rebuilds the schedule from the directory: every .msg whose
// initial envelope and body check out is scheduled (by its .env when
// there is one); a .msg that does not check out was never acknowledged
// and is removed, unless a .env says it was: then it is an older queue's
// bare body if its length is the .env's size, else both are quarantined; a
// .env without its .msg, or corrupt, is quarantined; temporary files
// are removed.
func (q *Queue) scan() error {
	ents, err := afero.ReadDir(q.cfg.Fs, q.cfg.Dir)
	if err != nil {
		return fmt.Errorf("queue: scan %s: %w", q.cfg.Dir, err)
	}
	envs, msgs := map[string]bool{}, map[string]bool{}
	for _, fi := range ents {
		n := fi.Name()
		if fi.IsDir() {
			continue
		}
		if id, ok := strings.CutSuffix(n, envSuffix); ok && validID(id) {
			envs[id] = true
		}
		if id, ok := strings.CutSuffix(n, msgSuffix); ok && validID(id) {
			msgs[id] = true
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
			id := strings.TrimSuffix(n, msgSuffix)
			if !validID(id) {
				q.log.Info("queue orphan removed", "file", n)
				q.removeStray(n)
				continue
			}
			err := q.checkMsg(id)
			switch {
			case err != nil && envs[id]:
				e, lerr := q.legacyMsg(id)
				if lerr != nil {
					q.quarantine(n, fmt.Errorf("%w (%w)", err, lerr))
					continue
				}
				q.schedule(id, e.NextTry)
			case errors.Is(err, errNoMeta):
				q.log.Info("queue orphan removed", "file", n, "reason", err)
				q.removeStray(n)
			case err != nil:
				return err
			default:
				e, err := q.readEnv(id)
				if err != nil {
					q.quarantine(n, err)
					continue
				}
				q.schedule(id, e.NextTry)
			}
		case strings.HasSuffix(n, envSuffix):
			id := strings.TrimSuffix(n, envSuffix)
			if !validID(id) {
				q.quarantine(n, fmt.Errorf("bad file name %q", n))
			} else if !msgs[id] {
				q.quarantine(n, fmt.Errorf("%w: no body", errCorrupt))
			}
		}
	}
	return nil
}

// legacyMsg reads the .env of a message spooled before .msg files held
// an envelope: then the .msg is the bare body, exactly the .env's size
// long, and readers, which stop at that size, handle it as they do a
// new one.
func (q *Queue) legacyMsg(id string) (*envelope, error) {
	e, err := q.readEnv(id)
	if err != nil {
		return nil, err
	}
	st, err := q.cfg.Fs.Stat(q.msgPath(id))
	if err != nil {
		return nil, fmt.Errorf("queue: stat body %s: %w", id, err)
	}
	if st.Size() != e.Size {
		return nil, fmt.Errorf("%w: body of %d bytes, envelope says %d", errCorrupt, st.Size(), e.Size)
	}
	return e, nil
}

// checkMsg checks <id>.msg whole: its initial envelope and the body's
// length and checksum. A file that fails is errNoMeta.
func (q *Queue) checkMsg(id string) error {
	f, err := q.cfg.Fs.Open(q.msgPath(id))
	if err != nil {
		return fmt.Errorf("queue: open body %s: %w", id, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("queue: stat body %s: %w", id, err)
	}
	e, err := readSpoolMeta(f, st.Size(), id)
	if err != nil {
		return err
	}
	bp := q.getBuf()
	defer q.bufs.Put(bp)
	return checkBody(readerOnly{f}, e, *bp)
}

func (q *Queue) removeStray(name string) {
	if err := q.cfg.Fs.Remove(filepath.Join(q.cfg.Dir, name)); err != nil {
		q.log.Error("queue remove stray file failed", "file", name, "err", err)
	}
}

// readHeader returns the original message's header block (up to
// maxHeaderBytes) for a DSN's text/rfc822-headers part.
func (q *Queue) readHeader(id string, size int64) ([]byte, error) {
	f, err := q.cfg.Fs.Open(q.msgPath(id))
	if err != nil {
		return nil, fmt.Errorf("queue: open body %s: %w", id, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, min(maxHeaderBytes, size)))
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
