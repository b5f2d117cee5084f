package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/smtp/queue"
)

// controlHandlers are the commands the running server answers on its
// control socket.
func (s *services) controlHandlers() map[string]controlHandler {
	return map[string]controlHandler{
		"health": func(context.Context, []string) (any, error) {
			h := map[string]any{"status": "ok", "listeners": len(s.listeners), "grants": len(s.grants.List())}
			if s.shared != nil {
				h["grants_shared"] = s.shared.Status()
			}
			return h, nil
		},
		"grants.list": func(context.Context, []string) (any, error) {
			return s.grants.List(), nil
		},
		"grants.revoke": func(_ context.Context, args []string) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("grants revoke takes one IP address")
			}
			ip, err := netip.ParseAddr(args[0])
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address", args[0])
			}
			if !s.grants.Revoke(ip.Unmap()) {
				return nil, fmt.Errorf("no grant for %s", ip)
			}
			return 1, nil
		},
		"grants.revoke-user": func(_ context.Context, args []string) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("grants revoke-user takes one user")
			}
			return s.grants.RevokeUser(strings.ToLower(args[0])), nil
		},
		"queue.list": func(context.Context, []string) (any, error) {
			return s.queue.List()
		},
		"queue.flush": func(_ context.Context, args []string) (any, error) {
			id := ""
			if len(args) > 0 {
				id = args[0]
			}
			return nil, s.queue.Flush(id)
		},
		"queue.del": func(_ context.Context, args []string) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("queue del takes one message id")
			}
			return nil, s.queue.Delete(args[0])
		},
		"report": func(_ context.Context, args []string) (any, error) {
			days := 30
			if len(args) == 1 {
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 {
					return nil, fmt.Errorf("bad number of days %q", args[0])
				}
				days = n
			}
			return s.report.summary(days), nil
		},
		"access.why": func(_ context.Context, args []string) (any, error) {
			if len(args) != 3 {
				return nil, errors.New("access why takes IP, sender and recipient")
			}
			return why(s.relay.Load().policy, args[0], args[1], args[2])
		},
	}
}

// whyAnswer is what `popgate access why` prints: each check and its reason.
type whyAnswer struct {
	Steps []whyStep `json:"steps"`
}

type whyStep struct {
	Check    string    `json:"check"`
	Action   string    `json:"action"`
	Reply    string    `json:"reply,omitempty"`
	Reason   string    `json:"reason"`
	Until    time.Time `json:"until,omitzero"`
	GrantFor string    `json:"grant_user,omitempty"`
}

// why runs the same checks the SMTP server would, for one client, sender
// and recipient, and says which rule or grant decided each.
func why(p *acl.Policy, ipText, from, to string) (*whyAnswer, error) {
	ip, err := netip.ParseAddr(ipText)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IP address", ipText)
	}
	req := acl.Request{IP: ip.Unmap(), From: strings.ToLower(from), To: strings.ToLower(to)}
	var a whyAnswer
	add := func(check string, d acl.Decision) bool {
		st := whyStep{Check: check, Action: d.Action.String(), Reason: d.Reason, GrantFor: d.GrantUser}
		if d.Code != 0 {
			st.Reply = fmt.Sprintf("%d %s %s", d.Code, d.Enhanced, d.Text)
		}
		a.Steps = append(a.Steps, st)
		return d.Action == acl.Accept || d.Action == acl.Relay
	}
	if !add("connect", p.CheckConnect(req)) {
		return &a, nil
	}
	if req.From != "" && !add("mail from", p.CheckFrom(req)) {
		return &a, nil
	}
	if req.To != "" {
		add("rcpt to", p.CheckRcpt(req))
	}
	return &a, nil
}

// grantsCommand: popgate grants list | revoke IP | revoke-user USER.
func grantsCommand(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("usage: popgate grants list|revoke IP|revoke-user USER [--config FILE]")
	}
	switch sub := args[0]; sub {
	case "list":
		cfg, _, _, err := commandConfig(e, "grants list", args[1:], 0, 0)
		if err != nil {
			return err
		}
		var gs []acl.Grant
		if err := callControl(ctx, cfg.controlSocket(), "grants.list", nil, &gs); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "IP\tUSER\tGRANTED\tEXPIRES")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.IP, g.User, g.Granted.Format(time.RFC3339), g.Expires.Format(time.RFC3339))
		}
		return tw.Flush()
	case "revoke", "revoke-user":
		cfg, _, rest, err := commandConfig(e, "grants "+sub, args[1:], 1, 1)
		if err != nil {
			return err
		}
		var n int
		if err := callControl(ctx, cfg.controlSocket(), "grants."+sub, rest, &n); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked %d grant(s)\n", n)
		return nil
	default:
		return usagef("unknown grants command %q (want list, revoke or revoke-user)", sub)
	}
}

// queueCommand: popgate queue list | flush [ID] | del ID.
func queueCommand(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("usage: popgate queue list|flush [ID]|del ID [--config FILE]")
	}
	switch sub := args[0]; sub {
	case "list":
		cfg, _, _, err := commandConfig(e, "queue list", args[1:], 0, 0)
		if err != nil {
			return err
		}
		var items []queue.Item
		if err := callControl(ctx, cfg.controlSocket(), "queue.list", nil, &items); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAGE\tSENDER\tRECIPIENTS\tNEXT TRY\tLAST ERROR")
		for _, it := range items {
			var rcpts, lastErr []string
			for _, r := range it.Recipients {
				rcpts = append(rcpts, fmt.Sprintf("%s (%s)", r.Addr, r.State))
				if r.LastError != "" {
					lastErr = append(lastErr, r.LastError)
				}
			}
			from := it.From
			if from == "" {
				from = "<>"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.ID, it.Age.Round(time.Second), from,
				strings.Join(rcpts, ", "), it.NextTry.Format(time.RFC3339), strings.Join(lastErr, "; "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d message(s) queued\n", len(items))
		return nil
	case "flush", "del":
		minArgs := 0 // flush: one message or all
		if sub == "del" {
			minArgs = 1
		}
		cfg, _, rest, err := commandConfig(e, "queue "+sub, args[1:], minArgs, 1)
		if err != nil {
			return err
		}
		if err := callControl(ctx, cfg.controlSocket(), "queue."+sub, rest, nil); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "queue %s: ok\n", sub)
		return nil
	default:
		return usagef("unknown queue command %q (want list, flush or del)", sub)
	}
}

// healthCommand exits 0 when the running server answers.
func healthCommand(ctx context.Context, e *env, args []string) error {
	cfg, _, _, err := commandConfig(e, "health", args, 0, 0)
	if err != nil {
		return err
	}
	var h struct {
		Listeners int               `json:"listeners"`
		Grants    int               `json:"grants"`
		Shared    *acl.SharedStatus `json:"grants_shared"`
	}
	if err := callControl(ctx, cfg.controlSocket(), "health", nil, &h); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ok: %v listeners, %v live grants\n", h.Listeners, h.Grants)
	if st := h.Shared; st != nil {
		// A lost store degrades sharing but not the instance: its own
		// logins still relay, so health still exits 0.
		if st.Up {
			fmt.Fprintf(e.stdout, "grants shared: up since %s via %s (%d outages, %d grants written back)\n",
				st.Since.UTC().Format(time.RFC3339), st.Store, st.Outages, st.WrittenBack)
		} else {
			fmt.Fprintf(e.stdout, "grants shared: DEGRADED, store %s unreachable since %s: %s; local grants only, %d waiting to be shared\n",
				st.Store, st.Since.UTC().Format(time.RFC3339), st.LastError, st.Unshared)
		}
	}
	return nil
}

// accessWhy: popgate access why IP [--from S] [--to R].
func accessWhy(ctx context.Context, e *env, args []string) error {
	fs, path := newFlags("access why", e)
	from := fs.String("from", "", "envelope sender")
	to := fs.String("to", "", "recipient")
	if err := parseFlags(fs, args); err != nil { // the IP may stand before or after the flags
		return err
	}
	if fs.NArg() != 1 {
		return usagef("usage: popgate access why IP [--from SENDER] [--to RCPT]")
	}
	ip := fs.Arg(0)
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	var a whyAnswer
	if err := callControl(ctx, cfg.controlSocket(), "access.why", []string{ip, *from, *to}, &a); err != nil {
		return err
	}
	for _, st := range a.Steps {
		fmt.Fprintf(e.stdout, "%-9s %-8s %s", st.Check, st.Action, st.Reason)
		if st.Reply != "" {
			fmt.Fprintf(e.stdout, " (%s)", st.Reply)
		}
		fmt.Fprintln(e.stdout)
	}
	return nil
}
