package acl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Each change is one Lua script, so that the key, its tombstone and its
// announcement are atomic: no instance can see a revoke announced between
// another's SET and its PUBLISH, nor write a grant between a revocation's
// DEL and its tombstone. SET … PXAT needs Redis 6.2 or Valkey 7.2. Both
// keys of a script are named by popgate:…:<ip>; this is not Redis Cluster
// (whose slots would want a hash tag), which popgate does not support.
var (
	// putScript writes a grant unless a revocation at or after its
	// granted time is recorded: it returns 1 if written, 0 if refused.
	//   KEYS: grant key, tombstone key
	//   ARGV: value, expires (unix ms), channel, message, granted (unix ms)
	putScript = redis.NewScript(2, `local revoked = tonumber(redis.call('GET', KEYS[2]) or '')
if revoked and tonumber(ARGV[5]) <= revoked then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`)
	// delScript deletes the grant if it was granted at or before the
	// revocation (or is unreadable), records the revocation unless a later
	// one is recorded, and announces it. It returns 1 if a grant was
	// deleted. A tombstone lasts until the later of ARGV[2] and the deleted
	// grant's expiry; one whose end has passed is not kept (SET PXAT of a
	// past instant stores nothing).
	//   KEYS: grant key, tombstone key
	//   ARGV: revocation time (unix ms), tombstone end (unix ms), channel, message
	delScript = redis.NewScript(2, `local at = tonumber(ARGV[1])
local ends = tonumber(ARGV[2])
local deleted = 0
local v = redis.call('GET', KEYS[1])
if v then
  local ok, g = pcall(cjson.decode, v)
  if not ok or type(g) ~= 'table' then g = {} end
  local granted = tonumber(g.granted)
  if not granted or granted <= at then
    local expires = tonumber(g.expires)
    if expires and expires > ends then ends = expires end
    redis.call('DEL', KEYS[1])
    deleted = 1
  end
end
local before = tonumber(redis.call('GET', KEYS[2]) or '')
if not before or before <= at then
  redis.call('SET', KEYS[2], ARGV[1], 'PXAT', string.format('%d', ends))
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return deleted`)
)

const (
	// sharedDialTimeout bounds connecting to the store.
	sharedDialTimeout = 2 * time.Second
	// sharedConnTimeout is how long the store may leave a command or its
	// keep-alive PING unanswered before the connection counts as broken.
	sharedConnTimeout = 3 * time.Second
	// sharedPingEvery is how often the subscription's connection is
	// checked with a PING while no change arrives.
	sharedPingEvery = time.Second
	// sharedScanBatch is how many keys one SCAN step and one MGET handle.
	sharedScanBatch = 1000
	// sharedIdleConns is how many command connections are kept open.
	sharedIdleConns = 4
)

// NewShared shares g's grants with every instance using the store at
// rawURL: redis://[user[:password]@]host[:port][/db] or rediss://… for
// TLS. A non-empty password replaces the URL's (relay.grants_password_file).
// It must be called before the first login; Run then keeps the sharing
// going. The store need not be reachable yet.
func NewShared(g *Grants, rawURL, password string, cfg SharedConfig) (*Shared, error) {
	st, err := parseSharedURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("acl: relay.grants_url: %w", err)
	}
	if password != "" {
		st.password = password
	}
	be := newRedisBackend(st)
	return newShared(g, be, st.redacted, cfg), nil
}

// CheckSharedURL reports whether rawURL is a usable relay.grants_url.
func CheckSharedURL(rawURL string) error {
	_, err := parseSharedURL(rawURL)
	return err
}

// sharedStore is where relay.grants_url points.
type sharedStore struct {
	addr     string // host:port
	tls      bool
	user     string // ACL user; empty: the default user
	password string
	db       int
	redacted string // the URL without credentials, for logs and health
}

func parseSharedURL(rawURL string) (sharedStore, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return sharedStore{}, errors.New("not a URL") // url's error repeats the password
	}
	var st sharedStore
	switch u.Scheme {
	case "redis", "valkey":
	case "rediss", "valkeys":
		st.tls = true
	default:
		return sharedStore{}, fmt.Errorf("scheme %q: want redis:// or rediss://", u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return sharedStore{}, errors.New("no host: want redis://host:port/db")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return sharedStore{}, errors.New("query parameters are not supported")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return sharedStore{}, errors.New("no host: want redis://host:port/db")
	}
	if port == "" {
		port = "6379"
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return sharedStore{}, fmt.Errorf("port %q: want 1 to 65535", port)
	}
	st.addr = net.JoinHostPort(host, port)
	if u.User != nil {
		// user:password, :password (the default user), or a lone user
		// whose password is in relay.grants_password_file.
		st.user = u.User.Username()
		st.password, _ = u.User.Password()
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return sharedStore{}, fmt.Errorf("database %q: want a number, 0 or more", db)
		}
		st.db = n
	}
	st.redacted = redactURL(u)
	return st, nil
}

// redactURL is the store's address for logs and health: no credentials.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// redisBackend talks to Redis or Valkey with redigo: a small pool of
// connections for commands, and one connection of its own for the
// subscription.
type redisBackend struct {
	st      sharedStore
	channel string
	pool    *redis.Pool
}

func newRedisBackend(st sharedStore) *redisBackend {
	b := &redisBackend{st: st, channel: sharedChannelPrefix + strconv.Itoa(st.db)}
	b.pool = &redis.Pool{
		DialContext: b.dial,
		MaxIdle:     sharedIdleConns,
		IdleTimeout: time.Minute,
		// A connection idle for a while may have been cut by a restart
		// of the store: check it before use, so that a login's write
		// does not fail on it.
		TestOnBorrow: func(c redis.Conn, idle time.Time) error {
			if time.Since(idle) < sharedPingEvery {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
	return b
}

// dial connects, authenticates and selects the database. There are no
// retries here: Run reconnects itself, and retries would hide an outage.
func (b *redisBackend) dial(ctx context.Context) (redis.Conn, error) {
	opts := []redis.DialOption{
		redis.DialConnectTimeout(sharedDialTimeout),
		redis.DialReadTimeout(sharedConnTimeout),
		redis.DialWriteTimeout(sharedConnTimeout),
		redis.DialUseTLS(b.st.tls),
		redis.DialTLSHandshakeTimeout(sharedDialTimeout), // redigo's default is none
		redis.DialDatabase(b.st.db),
	}
	if b.st.password != "" { // AUTH [user] password
		opts = append(opts, redis.DialPassword(b.st.password), redis.DialUsername(b.st.user))
	}
	c, err := redis.DialContext(ctx, "tcp", b.st.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// do runs fn on a connection from the pool.
func (b *redisBackend) do(ctx context.Context, fn func(redis.Conn) error) error {
	c, err := b.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer c.Close() // back to the pool, or closed if it broke
	return fn(c)
}

func (b *redisBackend) put(ctx context.Context, gr Grant) (stored bool, err error) {
	err = b.do(ctx, func(c redis.Conn) error {
		n, err := redis.Int(putScript.DoContext(ctx, c, sharedKey(gr.IP), sharedTombKey(gr.IP), encodeValue(gr),
			ms(gr.Expires), b.channel, encodeGrantMessage(gr), ms(gr.Granted)))
		stored = n == 1
		return err
	})
	return stored, err
}

func (b *redisBackend) del(ctx context.Context, rv revocation) error {
	return b.do(ctx, func(c redis.Conn) error {
		_, err := delScript.DoContext(ctx, c, sharedKey(rv.IP), sharedTombKey(rv.IP),
			ms(rv.At), ms(rv.Until), b.channel, encodeRevokeMessage(rv))
		return err
	})
}

// ms is t in unix milliseconds, as the store keeps times.
func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func (b *redisBackend) load(ctx context.Context) ([]Grant, error) {
	var out []Grant
	err := b.do(ctx, func(c redis.Conn) error {
		cursor := "0"
		for {
			step, err := redis.Values(redis.DoContext(c, ctx, "SCAN", cursor,
				"MATCH", sharedKeyPrefix+"*", "COUNT", sharedScanBatch))
			if err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			var keys []string
			if _, err := redis.Scan(step, &cursor, &keys); err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			if len(keys) > 0 {
				args := make([]any, len(keys))
				for i, k := range keys {
					args[i] = k
				}
				// A nil (a key expired between SCAN and MGET) reads as "".
				vals, err := redis.Strings(redis.DoContext(c, ctx, "MGET", args...))
				if err != nil {
					return fmt.Errorf("mget: %w", err)
				}
				out = appendGrants(out, keys, vals)
			}
			if cursor == "0" {
				return nil
			}
		}
	})
	return out, err
}

// appendGrants decodes the values of keys, skipping what is not
// popgate's or is gone.
func appendGrants(out []Grant, keys, vals []string) []Grant {
	for i, v := range vals {
		if v == "" || i >= len(keys) {
			continue // expired between SCAN and MGET
		}
		ip, err := netip.ParseAddr(strings.TrimPrefix(keys[i], sharedKeyPrefix))
		if err != nil || ip.Zone() != "" {
			continue // not popgate's key
		}
		gr, err := decodeValue(ip.Unmap(), v)
		if err != nil {
			continue // not popgate's value
		}
		out = append(out, gr)
	}
	return out
}

// subscribe holds a connection of its own in subscribed mode. It PINGs
// while the channel is quiet, so that a store that stopped answering is
// noticed within sharedPingEvery + sharedConnTimeout.
func (b *redisBackend) subscribe(ctx context.Context, ready func(), msg func(string)) error {
	dctx, cancel := context.WithTimeout(ctx, sharedDialTimeout)
	c, err := b.dial(dctx)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	// Closing the connection is what ends a Receive waiting on it.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	psc := redis.PubSubConn{Conn: c}
	if err := psc.Subscribe(b.channel); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	// A timed-out read breaks a redigo connection for good, so the PINGs
	// come from a ticker of their own, and every answer resets the wait.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(sharedPingEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if psc.Ping("") != nil {
					return // Receive sees the broken connection
				}
			}
		}
	}()
	for {
		switch v := psc.ReceiveWithTimeout(sharedPingEvery + sharedConnTimeout).(type) {
		case redis.Message:
			msg(string(v.Data))
		case redis.Subscription:
			if v.Kind == "subscribe" && v.Channel == b.channel {
				ready()
			}
		case redis.Pong:
		case error:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("receive: %w", v)
		}
	}
}

// close closes the pool; redigo's Pool.Close is itself safe to repeat.
func (b *redisBackend) close() { _ = b.pool.Close() }
