package acl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Each change is one Lua script, so that the key and its announcement are
// atomic: no instance can see a revoke announced between another's SET
// and its PUBLISH. SET … PXAT needs Redis 6.2 or Valkey 7.2.
var (
	putScript = valkey.NewLuaScript(`redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`)
	delScript = valkey.NewLuaScript(`redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1`)
)

const (
	// sharedDialTimeout bounds connecting to the store.
	sharedDialTimeout = 2 * time.Second
	// sharedConnTimeout is how long the store may leave a command or its
	// keep-alive PING unanswered before the connection counts as broken.
	sharedConnTimeout = 3 * time.Second
	// sharedScanBatch is how many keys one SCAN step and one MGET handle.
	sharedScanBatch = 1000
)

// NewShared shares g's grants with every instance using the store at
// rawURL: redis://[user[:password]@]host[:port][/db] or rediss://… for
// TLS. A non-empty password replaces the URL's (relay.grants_password_file).
// It must be called before the first login; Run then keeps the sharing
// going. The store need not be reachable yet.
func NewShared(g *Grants, rawURL, password string, cfg SharedConfig) (*Shared, error) {
	opt, u, err := parseSharedURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("acl: relay.grants_url: %w", err)
	}
	if password != "" {
		opt.Password = password
	}
	// The replica is kept by pub/sub; server-assisted client-side caching
	// would add nothing but tracking traffic.
	opt.DisableCache = true
	// Run reconnects and reloads itself; valkey-go's own retries would
	// hide an outage (Receive would wait through it silently).
	opt.DisableRetry = true
	opt.Dialer.Timeout = sharedDialTimeout
	opt.ConnWriteTimeout = sharedConnTimeout
	be := &valkeyBackend{opt: opt, channel: sharedChannelPrefix + strconv.Itoa(opt.SelectDB)}
	return newShared(g, be, redactURL(u), cfg), nil
}

// CheckSharedURL reports whether rawURL is a usable relay.grants_url.
func CheckSharedURL(rawURL string) error {
	_, _, err := parseSharedURL(rawURL)
	return err
}

func parseSharedURL(rawURL string) (valkey.ClientOption, *url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return valkey.ClientOption{}, nil, errors.New("not a URL") // url's error repeats the password
	}
	switch u.Scheme {
	case "redis", "rediss", "valkey", "valkeys":
	default:
		return valkey.ClientOption{}, nil, fmt.Errorf("scheme %q: want redis:// or rediss://", u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return valkey.ClientOption{}, nil, errors.New("no host: want redis://host:port/db")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return valkey.ClientOption{}, nil, errors.New("query parameters are not supported")
	}
	opt, err := valkey.ParseURL(rawURL)
	if err != nil {
		return valkey.ClientOption{}, nil, err
	}
	if opt.SelectDB < 0 {
		return valkey.ClientOption{}, nil, fmt.Errorf("database %d: want 0 or more", opt.SelectDB)
	}
	return opt, u, nil
}

// redactURL is the store's address for logs and health: no credentials.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// valkeyBackend talks to Redis or Valkey with valkey-go.
type valkeyBackend struct {
	opt     valkey.ClientOption
	channel string

	mu     sync.Mutex
	client valkey.Client // nil until the store was first reached
}

// conn returns the client, connecting on first use: valkey.NewClient
// fails when the store is down, and the store may come up after popgate.
func (b *valkeyBackend) conn() (valkey.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client != nil {
		return b.client, nil
	}
	c, err := valkey.NewClient(b.opt)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	b.client = c
	return c, nil
}

func (b *valkeyBackend) put(ctx context.Context, gr Grant) error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	args := []string{encodeValue(gr), strconv.FormatInt(gr.Expires.UnixMilli(), 10), b.channel, encodeGrantMessage(gr)}
	return putScript.Exec(ctx, c, []string{sharedKey(gr.IP)}, args).Error()
}

func (b *valkeyBackend) del(ctx context.Context, ip netip.Addr) error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	return delScript.Exec(ctx, c, []string{sharedKey(ip)}, []string{b.channel, encodeRevokeMessage(ip)}).Error()
}

func (b *valkeyBackend) load(ctx context.Context) ([]Grant, error) {
	c, err := b.conn()
	if err != nil {
		return nil, err
	}
	var out []Grant
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(sharedKeyPrefix+"*").Count(sharedScanBatch).Build()).AsScanEntry()
		if err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		if len(e.Elements) > 0 {
			vals, err := c.Do(ctx, c.B().Mget().Key(e.Elements...).Build()).AsStrSlice()
			if err != nil {
				return nil, fmt.Errorf("mget: %w", err)
			}
			for i, v := range vals {
				if v == "" || i >= len(e.Elements) {
					continue // expired between SCAN and MGET
				}
				ip, err := netip.ParseAddr(strings.TrimPrefix(e.Elements[i], sharedKeyPrefix))
				if err != nil || ip.Zone() != "" {
					continue // not popgate's key
				}
				gr, err := decodeValue(ip.Unmap(), v)
				if err != nil {
					continue // not popgate's value
				}
				out = append(out, gr)
			}
		}
		if e.Cursor == 0 {
			return out, nil
		}
		cursor = e.Cursor
	}
}

func (b *valkeyBackend) subscribe(ctx context.Context, ready func(), msg func(string)) error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	hooked := valkey.WithOnSubscriptionHook(ctx, func(s valkey.PubSubSubscription) {
		if s.Kind == "subscribe" {
			ready()
		}
	})
	return c.Receive(hooked, c.B().Subscribe().Channel(b.channel).Build(), func(m valkey.PubSubMessage) {
		msg(m.Message)
	})
}

func (b *valkeyBackend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client != nil {
		b.client.Close()
		b.client = nil
	}
}
