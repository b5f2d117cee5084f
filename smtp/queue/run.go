package queue

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Run delivers queued mail until ctx is done; call it once per Queue. It then stops starting
// deliveries, gives those in flight shutdownGrace to finish, cuts the
// rest (their recipients stay pending) and returns ctx's error.
func (q *Queue) Run(ctx context.Context) error {
	// Deliveries get their own context so they outlive ctx by the grace.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	defer q.conns.closeAll() // runs after the wait for the deliveries below
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		for _, it := range q.takeDue() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q.process(dctx, it) // ends with finish, which kicks the loop
			}()
		}
		timer.Reset(q.wait())
		select {
		case <-ctx.Done():
			stopped := make(chan struct{})
			go func() { wg.Wait(); close(stopped) }()
			grace := time.NewTimer(q.grace)
			defer grace.Stop()
			select {
			case <-stopped:
			case <-grace.C:
				cancel()
				<-stopped
			}
			return ctx.Err()
		case <-q.kickCh:
		case <-timer.C:
		}
	}
}

// takeDue marks as running and returns the messages whose time has come,
// as many as MaxConcurrent allows.
func (q *Queue) takeDue() []*item {
	now := q.cfg.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*item
	for q.due.Len() > 0 && q.running < q.cfg.MaxConcurrent {
		e := q.due[0]
		it := q.items[e.id]
		if it == nil || it.running || !it.next.Equal(e.at) {
			heap.Pop(&q.due) // stale entry
			continue
		}
		if e.at.After(now) {
			break
		}
		heap.Pop(&q.due)
		it.running = true
		q.running++
		out = append(out, it)
	}
	return out
}

// wait returns how long Run may sleep before the next message is due.
func (q *Queue) wait() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.due.Len() == 0 || q.running >= q.cfg.MaxConcurrent {
		return maxIdleWait
	}
	d := q.due[0].at.Sub(q.cfg.Now())
	return min(max(d, 0), maxIdleWait)
}

// finish records the end of a delivery attempt: the message is
// rescheduled at next, or forgotten when gone is set.
func (q *Queue) finish(it *item, next time.Time, gone bool) {
	q.mu.Lock()
	it.running = false
	q.running--
	if gone || it.deleted {
		delete(q.items, it.id)
	} else {
		it.next = next
		if it.flushed {
			// Flushed during the attempt: try again now.
			it.next = q.cfg.Now()
			it.flushed = false
		}
		heap.Push(&q.due, schedEntry{at: it.next, id: it.id})
	}
	q.mu.Unlock()
	if q.hookAttemptDone != nil {
		q.hookAttemptDone(it.id)
	}
	q.kick()
}

// backoff is the wait after the n-th failed attempt: MinRetry doubling.
func (q *Queue) backoff(n int) time.Duration {
	d := q.cfg.MinRetry
	for i := 1; i < n && d < q.cfg.MaxAge; i++ {
		d *= 2
	}
	return min(d, q.cfg.MaxAge)
}
