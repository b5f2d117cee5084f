package queue

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Connection cache limits. RFC 5321 §4.5.3.2.7 lets a server drop a client
// idle for 5 minutes; a cached connection is kept far shorter so it never
// holds a peer's slot for long (Postfix: smtp_connection_cache_time_limit
// 2s, smtp_connection_reuse_time_limit 300s).
const (
	// connIdleLimit is how long an idle connection waits for the next
	// message to its destination before it is closed.
	connIdleLimit = 2 * time.Second
	// connReuseLimit is how long after it was opened a connection may
	// still be handed out for another message.
	connReuseLimit = 5 * time.Minute
	// quitTimeout bounds the QUIT exchange when a cached connection is
	// closed (RFC 5321 §4.5.3.2: the client may close after a short wait).
	quitTimeout = 10 * time.Second
)

// cachedConn is an SMTP connection after EHLO (and STARTTLS and AUTH),
// between transactions.
type cachedConn struct {
	c      *smtp.Client
	conn   net.Conn
	name   string    // the peer's host name (Remote-MTA)
	opened time.Time // when it was dialled, for connReuseLimit
	idle   time.Time // when it was put back, for connIdleLimit
	timer  *time.Timer
}

// quit ends the session politely and closes the connection.
func (cc *cachedConn) quit() {
	_ = cc.conn.SetDeadline(time.Now().Add(quitTimeout))
	if err := cc.c.Quit(); err != nil {
		_ = cc.c.Close()
	}
}

// connCache keeps idle connections per destination so that several
// messages to one destination travel over one TCP and SMTP session
// (RFC 5321 §3.3 allows any number of transactions per session).
// A connection is either in use by one delivery, which holds a
// destination slot (MaxPerDestination), or idle here; a new one is dialled
// only when none is idle, so the connections to a destination stay within
// MaxPerDestination. At most max connections are idle in all.
type connCache struct {
	mu   sync.Mutex
	idle map[string][]*cachedConn
	n    int
	max  int
	now  func() time.Time
}

func newConnCache(max int, now func() time.Time) *connCache {
	return &connCache{idle: map[string][]*cachedConn{}, max: max, now: now}
}

// get returns the most recently used idle connection to dest, or nil.
// Connections past their idle or reuse limit are closed on the way.
func (cc *connCache) get(dest string) *cachedConn {
	now := cc.now()
	cc.mu.Lock()
	var stale []*cachedConn
	var got *cachedConn
	for l := cc.idle[dest]; len(l) > 0 && got == nil; l = cc.idle[dest] {
		c := l[len(l)-1]
		cc.removeLocked(dest, len(l)-1)
		c.timer.Stop()
		if now.Sub(c.idle) >= connIdleLimit || now.Sub(c.opened) >= connReuseLimit {
			stale = append(stale, c)
			continue
		}
		got = c
	}
	cc.mu.Unlock()
	for _, c := range stale {
		c.quit()
	}
	return got
}

// put keeps c for the next message to dest, or closes it when the cache
// is full or c is too old to be reused.
func (cc *connCache) put(dest string, c *cachedConn) {
	now := cc.now()
	cc.mu.Lock()
	if cc.n >= cc.max || now.Sub(c.opened) >= connReuseLimit {
		cc.mu.Unlock()
		c.quit()
		return
	}
	c.idle = now
	cc.idle[dest] = append(cc.idle[dest], c)
	cc.n++
	c.timer = time.AfterFunc(connIdleLimit, func() { cc.expire(dest, c) })
	cc.mu.Unlock()
}

// expire closes c if it is still idle when its idle limit is over.
func (cc *connCache) expire(dest string, c *cachedConn) {
	cc.mu.Lock()
	found := false
	for i, x := range cc.idle[dest] {
		if x == c {
			cc.removeLocked(dest, i)
			found = true
			break
		}
	}
	cc.mu.Unlock()
	if found {
		c.quit()
	}
}

func (cc *connCache) removeLocked(dest string, i int) {
	l := cc.idle[dest]
	l = append(l[:i], l[i+1:]...)
	if len(l) == 0 {
		delete(cc.idle, dest)
	} else {
		cc.idle[dest] = l
	}
	cc.n--
}

// trim closes the longest idle connections until at most limit are
// left, so that a new connection keeps the total within MaxConcurrent.
func (cc *connCache) trim(limit int) {
	limit = max(limit, 0)
	cc.mu.Lock()
	var victims []*cachedConn
	for cc.n > limit {
		var od string
		oi := -1
		for dest, l := range cc.idle {
			for i, c := range l {
				if oi < 0 || c.idle.Before(cc.idle[od][oi].idle) {
					od, oi = dest, i
				}
			}
		}
		c := cc.idle[od][oi]
		c.timer.Stop()
		cc.removeLocked(od, oi)
		victims = append(victims, c)
	}
	cc.mu.Unlock()
	for _, c := range victims {
		c.quit()
	}
}

// closeAll closes every idle connection (when Run ends).
func (cc *connCache) closeAll() {
	cc.mu.Lock()
	var all []*cachedConn
	for dest, l := range cc.idle {
		for _, c := range l {
			c.timer.Stop()
			all = append(all, c)
		}
		delete(cc.idle, dest)
	}
	cc.n = 0
	cc.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Go(c.quit)
	}
	wg.Wait()
}

// staleReply reports whether err, the answer to the first command on a
// reused connection, means the peer had dropped the session meanwhile: no
// SMTP reply at all, or 421 (RFC 5321 §3.8: the server closes the
// channel). The message is then sent over a fresh connection.
func staleReply(err error) bool {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return true
	}
	return se.Code == 421
}
