package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// process makes one delivery attempt for a due message, sends the DSNs it
// calls for and records the result durably before rescheduling.
func (q *Queue) process(ctx context.Context, it *item) {
	id := it.id
	log := q.log.With("id", id)
	e, err := q.readEnv(id)
	switch {
	case errors.Is(err, ErrNotFound):
		q.finish(it, time.Time{}, true)
		return
	case errors.Is(err, errCorrupt):
		it.fileMu.Lock()
		if !it.deleted {
			q.quarantine(id+envSuffix, err)
		}
		it.fileMu.Unlock()
		q.finish(it, time.Time{}, true)
		return
	case err != nil:
		log.Error("queue read failed", "err", err)
		q.finish(it, q.cfg.Now().Add(q.cfg.MinRetry), false)
		return
	}

	deadline := e.Created.Add(q.cfg.MaxAge)
	if q.cfg.Now().Before(deadline) {
		q.attempt(ctx, e)
	}
	now := q.cfg.Now()
	if !now.Before(deadline) {
		q.expire(e, now)
	}
	q.sendBounce(ctx, e, now)
	q.sendWarning(ctx, e, now)

	e.Attempts++
	gone := e.count(StatePending) == 0 && e.count(StateFailed) == 0
	e.NextTry = now.Add(q.backoff(e.Attempts))
	if e.count(StatePending) > 0 && e.NextTry.After(deadline) && deadline.After(now) {
		e.NextTry = deadline // the last try, then the bounce, at MaxAge
	}

	if q.hookAfterDelivery != nil {
		q.hookAfterDelivery(id)
	}
	it.fileMu.Lock()
	if !it.deleted {
		if gone {
			err = q.removeFiles(id, true) // this attempt read the files last: recycle them
		} else {
			err = q.writeEnv(e)
		}
	}
	it.fileMu.Unlock()
	if err != nil {
		// The old envelope stays: its recipients are retried (at-least-once).
		log.Error("queue update failed", "err", err)
	}
	if gone {
		log.Info("queue done", "attempts", e.Attempts)
	} else {
		log.Info("queue deferred", "pending", e.count(StatePending), "next", e.NextTry)
	}
	q.finish(it, e.NextTry, gone && err == nil)
}

// attempt tries every pending recipient once, one connection per
// destination, and records the outcomes in e.
func (q *Queue) attempt(ctx context.Context, e *envelope) {
	groups := map[string][]int{}
	var order []string
	for i, r := range e.Rcpts {
		if r.State != StatePending {
			continue
		}
		key := q.destination(r.Addr)
		if groups[key] == nil {
			order = append(order, key)
		}
		groups[key] = append(groups[key], i)
	}
	for _, key := range order {
		idx := groups[key]
		rcpts := make([]string, len(idx))
		for j, i := range idx {
			rcpts[j] = e.Rcpts[i].Addr
		}
		outs := q.deliverDest(ctx, e, key, rcpts)
		now := q.cfg.Now()
		for j, i := range idx {
			r := &e.Rcpts[i]
			o := outs[j]
			r.State, r.Status, r.LastAttempt = o.state, o.status, now
			if o.state != StateSent {
				r.LastError, r.RemoteMTA = o.diag, o.mta
			}
			q.log.Info("queue attempt", "id", e.ID, "rcpt", r.Addr, "state", o.state,
				"status", o.status, "mta", o.mta, "reply", o.diag)
		}
	}
}

// destination names the connection a recipient's mail goes through: a
// route's host, the smarthost for all, or the recipient's domain.
func (q *Queue) destination(addr string) string {
	domain := strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
	if hp, ok := q.routeFor(domain); ok {
		return routeDest + hp
	}
	if q.cfg.Smarthost != "" {
		return "smarthost"
	}
	return domain
}

// deliverDest delivers to one destination, trying its hosts in order
// until one takes responsibility for the transaction.
func (q *Queue) deliverDest(ctx context.Context, e *envelope, dest string, rcpts []string) []outcome {
	fill := func(o outcome) []outcome {
		out := make([]outcome, len(rcpts))
		for i := range out {
			out[i] = o
		}
		return out
	}
	release, err := q.acquireDest(ctx, dest)
	if err != nil {
		return fill(outcome{state: StatePending, status: "4.4.2", diag: "delivery interrupted: " + err.Error()})
	}
	defer release()

	// A session left open by an earlier message to dest saves the
	// connect, greeting, EHLO (and STARTTLS, AUTH) and the routing.
	for {
		cc := q.conns.get(dest)
		if cc == nil {
			break
		}
		outs, stale := q.transact(ctx, cc, dest, e, rcpts, true)
		if !stale {
			return outs
		}
		q.log.Debug("queue cached connection gone, dialling anew", "dest", dest, "mta", cc.name)
		if ctx.Err() != nil {
			return fill(outcome{state: StatePending, status: "4.4.2", diag: "delivery interrupted: " + ctx.Err().Error()})
		}
	}

	// This delivery and every other one running may each hold a
	// connection; idle ones give way so MaxConcurrent bounds them all.
	q.mu.Lock()
	running := q.running
	q.mu.Unlock()
	q.conns.trim(q.cfg.MaxConcurrent - running)

	var targets []target
	tlsMode := TLSOpportunistic
	if hp, ok := strings.CutPrefix(dest, routeDest); ok {
		host, _, _ := net.SplitHostPort(hp)
		targets = []target{{name: strings.Trim(host, "[]"), addrs: []string{hp}}}
	} else if q.cfg.Smarthost != "" {
		host, _, _ := net.SplitHostPort(q.cfg.Smarthost)
		targets = []target{{name: host, addrs: []string{q.cfg.Smarthost}}}
		tlsMode = q.cfg.SmarthostTLS
	} else {
		targets, err = q.route(ctx, dest)
		if err != nil {
			var re *routeError
			if errors.As(err, &re) && re.perm {
				return fill(outcome{state: StateFailed, status: re.status, diag: oneLine(err.Error())})
			}
			return fill(outcome{state: StatePending, status: "4.4.3", diag: oneLine(err.Error())})
		}
	}
	// RFC 3463 X.4.4: unable to route, the default until a host answers.
	last := fill(outcome{state: StatePending, status: "4.4.4", diag: "no usable host for " + dest})
	for _, t := range targets {
		addrs, err := q.addrsOf(ctx, t)
		if err != nil {
			last = fill(outcome{state: StatePending, status: "4.4.3", diag: oneLine(err.Error())})
			continue
		}
		for _, addr := range addrs {
			mode := tlsMode
			for {
				conn, err := q.dial(ctx, addr)
				if err != nil {
					// RFC 3463 X.4.1: no answer from host.
					last = fill(outcome{state: StatePending, status: "4.4.1", mta: t.name,
						diag: oneLine(fmt.Sprintf("connect to %s (%s): %v", t.name, addr, err))})
					break
				}
				outs, nx := q.session(ctx, conn, dest, t.name, mode, e, rcpts)
				last = outs
				if nx == nextRetryPlain {
					mode = TLSNone
					continue
				}
				if nx == nextDone {
					return outs
				}
				break
			}
			if ctx.Err() != nil {
				return last
			}
		}
	}
	return last
}

func (q *Queue) dial(ctx context.Context, addr string) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	return q.cfg.Dial(dctx, "tcp", addr)
}

// destSem limits connections to one destination.
type destSem struct {
	ch   chan struct{}
	refs int
}

// acquireDest waits for a connection slot to dest (MaxPerDestination).
func (q *Queue) acquireDest(ctx context.Context, dest string) (func(), error) {
	q.destMu.Lock()
	s := q.dests[dest]
	if s == nil {
		s = &destSem{ch: make(chan struct{}, q.cfg.MaxPerDestination)}
		q.dests[dest] = s
	}
	s.refs++
	q.destMu.Unlock()
	unref := func() {
		q.destMu.Lock()
		if s.refs--; s.refs == 0 {
			delete(q.dests, dest)
		}
		q.destMu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
	case <-ctx.Done():
		unref()
		return nil, ctx.Err()
	}
	return func() { <-s.ch; unref() }, nil
}

// expire turns every pending recipient into a failure once MaxAge is over.
func (q *Queue) expire(e *envelope, now time.Time) {
	for i := range e.Rcpts {
		r := &e.Rcpts[i]
		if r.State != StatePending {
			continue
		}
		r.State = StateFailed
		if r.Status == "" || r.Status[0] != '4' {
			r.Status = "4.4.7" // RFC 3463: delivery time expired
		}
		if r.LastError == "" {
			// Keep the peer's last reply for the DSN; say why otherwise.
			r.LastError = fmt.Sprintf("message expired after %s in the queue", now.Sub(e.Created).Round(time.Second))
		}
	}
}
