package main

import (
	"fmt"
	"strings"
)

// sendmailMode is what one sendmail(1) invocation does.
type sendmailMode int

const (
	modeDeliver   sendmailMode = iota // -bm (default): read a message, hand it over
	modeSMTP                          // -bs: speak SMTP on stdin/stdout
	modeQueueList                     // -bp, mailq
	modeAliases                       // -bi, -I, newaliases
	modeFlush                         // -q
)

// sendmailOpts is a parsed sendmail(1) command line.
type sendmailOpts struct {
	mode       sendmailMode
	extract    bool    // -t: recipients from To:, Cc:, Bcc:
	ignoreDots bool    // -i, -oi: a lone "." does not end the message
	from       *string // -f, -r; nil: the caller
	fullName   string  // -F
	verbose    bool    // -v
	config     string  // --config (popgate's own)
	rcpts      []string
}

// Option letters of sendmail 8 that take an argument ("-f addr" or
// "-faddr"), and those that take none. Letters accepted only to be ignored
// are the ones sendmail callers pass for sendmail's own queue, DSN and
// logging choices, which popgate makes itself.
const (
	sendmailArgLetters  = "ABbCdeFfhLMNOopRrVX"
	sendmailBareLetters = "cGIimnsTtUv"
)

// parseSendmailArgs parses a sendmail(1) command line as sendmail 8 does:
// options first (clustered or not, arguments attached or separate), then
// recipients; "--" ends the options. --config FILE is popgate's own.
func parseSendmailArgs(args []string) (*sendmailOpts, error) {
	o := &sendmailOpts{}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if a == "--config" || strings.HasPrefix(a, "--config=") {
			if v, ok := strings.CutPrefix(a, "--config="); ok {
				o.config = v
				continue
			}
			if i+1 >= len(args) {
				return nil, fmt.Errorf("--config needs a file")
			}
			i++
			o.config = args[i]
			continue
		}
		if len(a) < 2 || a[0] != '-' || strings.HasPrefix(a, "--") {
			if strings.HasPrefix(a, "--") {
				return nil, fmt.Errorf("unknown option %q", a)
			}
			break // the first recipient
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case c == 'q':
				// -q, -q30m, -qIqueueid...: flush the queue now. The
				// argument (interval, filters) is optional and attached.
				o.mode = modeFlush
				j = len(a)
			case strings.IndexByte(sendmailArgLetters, c) >= 0:
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("option -%c needs an argument", c)
					}
					i++
					val = args[i]
				}
				if err := o.setArg(c, val); err != nil {
					return nil, err
				}
				j = len(a)
			case strings.IndexByte(sendmailBareLetters, c) >= 0:
				o.setFlag(c)
			default:
				return nil, fmt.Errorf("unknown option -%c", c)
			}
		}
	}
	o.rcpts = append(o.rcpts, args[i:]...)
	return o, nil
}

func (o *sendmailOpts) setFlag(c byte) {
	switch c {
	case 't':
		o.extract = true
	case 'i':
		o.ignoreDots = true
	case 'v':
		o.verbose = true
	case 'I':
		o.mode = modeAliases
	}
	// c, G, m, n, s, T, U: sendmail's own choices, ignored as Postfix does.
}

func (o *sendmailOpts) setArg(c byte, val string) error {
	switch c {
	case 'b':
		switch val {
		case "m":
			o.mode = modeDeliver
		case "s":
			o.mode = modeSMTP
		case "p":
			o.mode = modeQueueList
		case "i":
			o.mode = modeAliases
		case "d", "D":
			return fmt.Errorf("-b%s: run `popgate serve` for the daemon", val)
		default:
			return fmt.Errorf("-b%s is not supported (use -bm, -bs, -bp or -bi)", val)
		}
	case 'f', 'r':
		v := strings.TrimSpace(val)
		if v == "<>" {
			v = ""
		}
		v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
		o.from = &v
	case 'F':
		o.fullName = val
	case 'o':
		// -oi is -i; -oem, -odb, -odi, -oQ...: delivery and error modes
		// that popgate decides itself.
		if val == "i" {
			o.ignoreDots = true
		}
	case 'O':
		if k, v, _ := strings.Cut(val, "="); strings.EqualFold(k, "IgnoreDots") {
			o.ignoreDots = v == "" || strings.EqualFold(v, "true") || v == "1"
		}
	}
	// A, B, C, d, e, h, L, M, N, p, R, V, X: accepted and ignored.
	return nil
}

// sendmailArgs turns how the binary was invoked into popgate arguments:
// as sendmail, mailq or newaliases (a symlink or a Debian alternative) it
// is `popgate sendmail` with the matching mode.
func sendmailArgs(argv0 string, args []string) []string {
	name := argv0
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	switch name {
	case "sendmail":
		return append([]string{"sendmail"}, args...)
	case "mailq":
		return append([]string{"sendmail", "-bp"}, args...)
	case "newaliases":
		return append([]string{"sendmail", "-bi"}, args...)
	}
	return args
}
