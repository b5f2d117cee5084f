package mbox

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

var (
	weekdays = map[string]bool{"Sun": true, "Mon": true, "Tue": true, "Wed": true, "Thu": true, "Fri": true, "Sat": true}
	months   = map[string]time.Month{
		"Jan": time.January, "Feb": time.February, "Mar": time.March, "Apr": time.April,
		"May": time.May, "Jun": time.June, "Jul": time.July, "Aug": time.August,
		"Sep": time.September, "Oct": time.October, "Nov": time.November, "Dec": time.December,
	}
)

// maxFromLine bounds the "From " lines accepted as separators; real ones
// are an address and a date.
const maxFromLine = 1000

// parseFromLine checks that line is an mbox separator, "From SENDER DATE",
// where DATE is ctime(3)'s "Www Mmm dd hh:mm[:ss] yyyy", optionally with a
// zone name or numeric offset before or after the year, as mail.local,
// procmail and UW tools write it. A body line that merely starts with
// "From " is not one, which is how qpopper tells them apart too.
func parseFromLine(line []byte) (time.Time, bool) {
	if len(line) > maxFromLine || !bytes.HasPrefix(line, []byte("From ")) {
		return time.Time{}, false
	}
	f := strings.Fields(string(line[len("From "):]))
	// The sender may be missing or contain spaces: find the date from its
	// weekday and month.
	for i := 0; i+3 < len(f); i++ {
		if !weekdays[f[i]] {
			continue
		}
		mon, ok := months[f[i+1]]
		if !ok {
			continue
		}
		if t, ok := parseDate(mon, f[i+2:]); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseDate parses "dd hh:mm[:ss] [ZONE] yyyy [ZONE]" with nothing after.
func parseDate(mon time.Month, f []string) (time.Time, bool) {
	if len(f) < 3 || len(f) > 4 {
		return time.Time{}, false
	}
	day, err := strconv.Atoi(f[0])
	if err != nil || day < 1 || day > 31 {
		return time.Time{}, false
	}
	hh, mm, ss, ok := parseClock(f[1])
	if !ok {
		return time.Time{}, false
	}
	year, loc := -1, time.UTC
	for _, tok := range f[2:] {
		if y, err := strconv.Atoi(tok); err == nil && len(tok) == 4 && year < 0 {
			year = y
			continue
		}
		if z, ok := parseZone(tok); ok {
			loc = z
			continue
		}
		return time.Time{}, false
	}
	if year < 0 {
		return time.Time{}, false
	}
	return time.Date(year, mon, day, hh, mm, ss, 0, loc), true
}

func parseClock(s string) (hh, mm, ss int, ok bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, false
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || len(p) != 2 || v < 0 || v > 60 {
			return 0, 0, 0, false
		}
		n[i] = v
	}
	if n[0] > 23 || n[1] > 59 {
		return 0, 0, 0, false
	}
	return n[0], n[1], n[2], true
}

// parseZone accepts "+0100"/"-0500" and alphabetic names ("PST", "UTC");
// names are not resolved, the time is then taken as UTC.
func parseZone(s string) (*time.Location, bool) {
	if len(s) == 5 && (s[0] == '+' || s[0] == '-') {
		v, err := strconv.Atoi(s[1:])
		if err != nil || v%100 > 59 {
			return nil, false
		}
		off := (v/100)*3600 + (v%100)*60
		if s[0] == '-' {
			off = -off
		}
		return time.FixedZone(s, off), true
	}
	if len(s) < 1 || len(s) > 6 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'A' || s[i] > 'Z') && (s[i] < 'a' || s[i] > 'z') {
			return nil, false
		}
	}
	return time.UTC, true
}
