package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/popgate/popgate/maildir/durable"
	"github.com/spf13/afero"
)

// reportKeepDays bounds how much relay history the report keeps.
const reportKeepDays = 90

// relayReport counts, per day and user, the recipients relayed because of
// a POP3 login: the list an administrator needs to move those users to
// SMTP AUTH. It is kept in data_dir/state/relay-report.json.
type relayReport struct {
	path   string
	now    func() time.Time
	logger *slog.Logger

	mu    sync.Mutex
	days  map[string]map[string]int // "2006-01-02" → user → recipients
	dirty bool
}

func newRelayReport(path string, now func() time.Time, logger *slog.Logger) *relayReport {
	r := &relayReport{path: path, now: now, logger: logger, days: map[string]map[string]int{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		logger.Warn("relay report unreadable, starting empty", "path", path, "err", err)
	default:
		if err := json.Unmarshal(b, &r.days); err != nil {
			logger.Warn("relay report corrupt, starting empty", "path", path, "err", err)
			r.days = map[string]map[string]int{}
		}
	}
	return r
}

// relayed records one recipient relayed thanks to user's POP3 login.
func (r *relayReport) relayed(user string) {
	day := r.now().UTC().Format(time.DateOnly)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.days[day] == nil {
		r.days[day] = map[string]int{}
	}
	r.days[day][user]++
	r.dirty = true
}

// reportRow is one user's total over the asked period.
type reportRow struct {
	User       string `json:"user"`
	Recipients int    `json:"recipients"`
	Days       int    `json:"days"` // days on which the user relayed
	Last       string `json:"last"` // last such day
}

// summary totals the last n days, most active users first.
func (r *relayReport) summary(n int) []reportRow {
	since := r.now().UTC().AddDate(0, 0, -n+1).Format(time.DateOnly)
	r.mu.Lock()
	defer r.mu.Unlock()
	rows := map[string]*reportRow{}
	for day, users := range r.days {
		if day < since {
			continue
		}
		for u, c := range users {
			row := rows[u]
			if row == nil {
				row = &reportRow{User: u}
				rows[u] = row
			}
			row.Recipients += c
			row.Days++
			row.Last = max(row.Last, day)
		}
	}
	out := make([]reportRow, 0, len(rows))
	for _, row := range rows {
		out = append(out, *row)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Recipients != out[j].Recipients {
			return out[i].Recipients > out[j].Recipients
		}
		return out[i].User < out[j].User
	})
	return out
}

// save writes the counts if they changed, dropping days past the window.
func (r *relayReport) save() error {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	oldest := r.now().UTC().AddDate(0, 0, -reportKeepDays).Format(time.DateOnly)
	for day := range r.days {
		if day < oldest {
			delete(r.days, day)
		}
	}
	b, err := json.Marshal(r.days)
	r.dirty = false
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return durable.WriteFile(afero.NewOsFs(), r.path, bytes.NewReader(b), 0o600)
}

// run saves once a minute until ctx is done, then a last time.
func (r *relayReport) run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := r.save(); err != nil {
				r.logger.Error("relay report not saved", "err", err)
			}
			return
		case <-t.C:
			if err := r.save(); err != nil {
				r.logger.Error("relay report not saved", "err", err)
			}
		}
	}
}

// reportCommand: popgate report [--days N]: who relayed thanks to POP3
// logins, asked of the running server.
func reportCommand(ctx context.Context, e *env, args []string) error {
	fs, path := newFlags("report", e)
	days := fs.Int("days", 30, "how many days back")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *days < 1 || *days > reportKeepDays {
		return usagef("--days must be between 1 and %d", reportKeepDays)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	var rows []reportRow
	if err := callControl(ctx, cfg.controlSocket(), "report", []string{strconv.Itoa(*days)}, &rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintf(e.stdout, "no user relayed through a POP3 login in the last %d day(s)\n", *days)
		return nil
	}
	fmt.Fprintf(e.stdout, "users who relayed thanks to a POP3 login in the last %d day(s); move them to SMTP AUTH:\n", *days)
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tRECIPIENTS\tDAYS\tLAST")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.User, r.Recipients, r.Days, r.Last)
	}
	return tw.Flush()
}
