package queue

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// ErrNotFound is returned for an id that is not in the queue.
var ErrNotFound = errors.New("queue: no such message")

// Queue is a durable outbound mail queue. Enqueue, List, Flush and Delete
// are safe to call from any goroutine, also while Run is active.
type Queue struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	items   map[string]*item // the schedule: every queued id
	due     schedHeap        // next tries, with stale entries skipped
	running int              // messages being delivered
	kickCh  chan struct{}    // wakes Run

	grace  time.Duration // shutdownGrace; shorter in tests
	unlock func() error  // releases the spool lock

	destMu sync.Mutex
	dests  map[string]*destSem // connection slots per destination
	conns  *connCache          // idle sessions per destination

	dirSync *dirSyncer // shared fsyncs of Dir
	bufs    sync.Pool  // *[]byte of copyBufSize, for bodies
	norms   sync.Pool  // *normReader, for Enqueue
	free    freePool   // spool files for reuse

	// Test hooks, nil in production: called at crash-relevant points.
	hookAfterMsg      func(id string)
	hookAfterDelivery func(id string)
	hookAttemptDone   func(id string)
}

// item is the in-memory schedule entry of one queued message.
type item struct {
	id      string
	next    time.Time
	running bool
	flushed bool // Flush came while running
	// fileMu serialises envelope rewrites with Delete, so a delivery that
	// ends after Delete never brings the files back.
	fileMu  sync.Mutex
	deleted bool
}

// New opens (creating if needed) the spool directory and schedules every
// message found in it: a restart resumes the queue.
func New(cfg Config) (*Queue, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.Fs.MkdirAll(cfg.Dir, dirPerm); err != nil {
		return nil, fmt.Errorf("queue: create %s: %w", cfg.Dir, err)
	}
	unlock, err := lockDir(cfg.Fs, cfg.Dir)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		unlock: unlock,
		cfg:    cfg,
		log:    cfg.Logger.With("component", "queue"),
		items:  map[string]*item{},
		kickCh: make(chan struct{}, 1),
		grace:  shutdownGrace,
		dests:  map[string]*destSem{},
		conns:  newConnCache(cfg.MaxConcurrent, cfg.Now),

		dirSync: newDirSyncer(cfg.Fs, cfg.Dir),
	}
	if err := q.scan(); err != nil {
		_ = unlock()
		return nil, err
	}
	return q, nil
}

// Close releases the spool directory for another Queue. Call it after
// Run has returned; the Queue must not be used afterwards.
func (q *Queue) Close() error {
	if err := q.unlock(); err != nil {
		return fmt.Errorf("queue: close: %w", err)
	}
	return nil
}

// Enqueue spools a message for the given recipients and returns once body
// and envelope are on disk (one file, fsynced): only then may the SMTP server
// answer 250. from may be "" (the null sender of a bounce).
func (q *Queue) Enqueue(ctx context.Context, from string, to []string, r io.Reader) (string, error) {
	if err := checkAddr(from, true); err != nil {
		return "", fmt.Errorf("queue: enqueue: sender: %w", err)
	}
	if len(to) == 0 {
		return "", errors.New("queue: enqueue: no recipients")
	}
	rcpts := make([]RecipientStatus, 0, len(to))
	for _, a := range to {
		if err := checkAddr(a, false); err != nil {
			return "", fmt.Errorf("queue: enqueue: recipient: %w", err)
		}
		rcpts = append(rcpts, RecipientStatus{Addr: a, State: StatePending})
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("queue: enqueue: %w", err)
	}
	now := q.cfg.Now()
	id, err := newID(now)
	if err != nil {
		return "", err
	}
	e := &envelope{Version: envelopeVersion, ID: id, From: from, Rcpts: rcpts,
		Created: now, NextTry: now}
	if err := q.writeMsg(e, r); err != nil {
		_ = q.cfg.Fs.Remove(q.msgPath(id))
		return "", err
	}
	q.log.Info("queue enqueued", "id", id, "from", from, "rcpts", len(to), "size", e.Size)
	q.schedule(id, now)
	return id, nil
}

// Item describes one queued message for List.
type Item struct {
	ID         string
	From       string
	Created    time.Time
	Age        time.Duration
	Size       int64
	Attempts   int
	NextTry    time.Time
	Recipients []RecipientStatus
}

// List returns the queued messages, oldest first, read from disk.
func (q *Queue) List() ([]Item, error) {
	q.mu.Lock()
	ids := make([]string, 0, len(q.items))
	for id := range q.items {
		ids = append(ids, id)
	}
	q.mu.Unlock()
	slices.Sort(ids) // ids begin with the arrival time
	now := q.cfg.Now()
	out := make([]Item, 0, len(ids))
	for _, id := range ids {
		e, err := q.readEnv(id)
		if errors.Is(err, errCorrupt) {
			// A finished message's files are renamed away before they
			// are recycled for a new message, so what was read may have
			// been the new one; the name being gone shows that.
			name := q.envPath(id)
			if errors.Is(err, errNoMeta) {
				name = q.msgPath(id) // read from the .msg: there was no .env
			}
			if _, serr := q.cfg.Fs.Stat(name); errors.Is(serr, os.ErrNotExist) {
				continue
			}
		}
		if errors.Is(err, ErrNotFound) {
			continue // finished or deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("queue: list: %w", err)
		}
		next := e.NextTry
		q.mu.Lock()
		if it := q.items[id]; it != nil && it.next.Before(next) {
			next = it.next // flushed
		}
		q.mu.Unlock()
		out = append(out, Item{ID: id, From: e.From, Created: e.Created, Age: now.Sub(e.Created),
			Size: e.Size, Attempts: e.Attempts, NextTry: next, Recipients: e.Rcpts})
	}
	return out, nil
}

// Flush makes the message id (or every message, for "") due now.
func (q *Queue) Flush(id string) error {
	now := q.cfg.Now()
	q.mu.Lock()
	if id == "" {
		for _, it := range q.items {
			q.setNextLocked(it, now)
		}
	} else {
		it := q.items[id]
		if it == nil {
			q.mu.Unlock()
			return fmt.Errorf("queue: flush %q: %w", id, ErrNotFound)
		}
		q.setNextLocked(it, now)
	}
	q.mu.Unlock()
	q.kick()
	return nil
}

// Delete removes a message from the queue without a bounce. A delivery
// in progress finishes its connection but records nothing afterwards.
func (q *Queue) Delete(id string) error {
	q.mu.Lock()
	it := q.items[id]
	q.mu.Unlock()
	if it == nil {
		return fmt.Errorf("queue: delete %q: %w", id, ErrNotFound)
	}
	it.fileMu.Lock()
	defer it.fileMu.Unlock()
	if it.deleted {
		return fmt.Errorf("queue: delete %q: %w", id, ErrNotFound)
	}
	// A delivery in progress may still be reading the body: remove it,
	// never recycle it.
	if err := q.removeFiles(id, false); err != nil {
		return err
	}
	// deleted is written under both locks: the delivery path reads it
	// under fileMu, finish under q.mu.
	q.mu.Lock()
	it.deleted = true
	if !it.running {
		delete(q.items, id)
	}
	q.mu.Unlock()
	q.log.Info("queue deleted", "id", id)
	return nil
}

// schedule adds or updates id's next try.
func (q *Queue) schedule(id string, next time.Time) {
	q.mu.Lock()
	it := q.items[id]
	if it == nil {
		it = &item{id: id}
		q.items[id] = it
	}
	q.setNextLocked(it, next)
	q.mu.Unlock()
	q.kick()
}

func (q *Queue) setNextLocked(it *item, next time.Time) {
	if it.running {
		it.flushed = true
		return
	}
	it.next = next
	heap.Push(&q.due, schedEntry{at: next, id: it.id})
}

// kick wakes Run to look at the schedule again.
func (q *Queue) kick() {
	select {
	case q.kickCh <- struct{}{}:
	default:
	}
}

// schedEntry is one next-try in the heap. Entries are not removed when a
// message is rescheduled; popping checks them against the item instead.
type schedEntry struct {
	at time.Time
	id string
}

type schedHeap []schedEntry

func (h schedHeap) Len() int           { return len(h) }
func (h schedHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h schedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *schedHeap) Push(x any)        { *h = append(*h, x.(schedEntry)) }
func (h *schedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
