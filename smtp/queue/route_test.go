package queue

import (
	"slices"
	"testing"

	"github.com/popgate/popgate/smtp/smtptest"
)

// TestRoutesBeforeSmarthost: a routed domain goes to its route's host, a
// ".parent" route covers the domains below it but not the parent itself,
// and everything else still goes to the smarthost (sendmail: mailertable
// before DS).
func TestRoutesBeforeSmarthost(t *testing.T) {
	t.Parallel()
	smart, hub, corp := smtptest.NewSink(t), smtptest.NewSink(t), smtptest.NewSink(t)
	h := newHarness(t, smart, func(c *Config) {
		c.Routes = map[string]string{"routed.test": "mailhub.test:2525", ".corp.test": "192.0.2.9:2526"}
	})
	h.router.route("mailhub.test:2525", hub.Addr)
	h.router.route("192.0.2.9:2526", corp.Addr)
	h.run(t)
	h.enqueue(t, "alice@local.test", []string{"x@Routed.test", "y@a.corp.test", "z@corp.test", "w@other.test"}, testMsg)
	if m := hub.Wait(t); !slices.Equal(m.To, []string{"x@Routed.test"}) {
		t.Errorf("route routed.test got %q", m.To)
	}
	if m := corp.Wait(t); !slices.Equal(m.To, []string{"y@a.corp.test"}) {
		t.Errorf("route .corp.test got %q", m.To)
	}
	if m := smart.Wait(t); !slices.Equal(m.To, []string{"z@corp.test", "w@other.test"}) {
		t.Errorf("smarthost got %q", m.To)
	}
}

func TestRoutesConfig(t *testing.T) {
	t.Parallel()
	good := map[string]string{"example.net": "mx.example.net:25", ".example.org": "[192.0.2.1]:2525"}
	if err := CheckRoutes(good); err != nil {
		t.Errorf("good routes refused: %v", err)
	}
	for _, bad := range []map[string]string{
		{"": "h:25"}, {".": "h:25"}, {"Example.net": "h:25"}, {"a@b": "h:25"}, {"..x": "h:25"},
		{"x.": "h:25"}, {"x": "h"}, {"x": ":25"}, {"x": "h:"},
	} {
		if err := CheckRoutes(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := New(Config{Dir: t.TempDir(), Bouncer: &bouncer{}, Routes: map[string]string{"x": "nohostport"}}); err == nil {
		t.Error("New accepted a bad route")
	}
}
