package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// helpCommand is one line of the commands list in `popgate --help`:
// two spaces, the name, spaces, the description.
var helpCommand = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s+(\S.*)$`)

// roffEscape makes text safe in a roff text line: backslashes and minus
// signs escaped, and a leading dot or quote (a request) neutralised.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// manPage turns `popgate --help` into popgate(8): the usage line becomes
// the synopsis, each command an entry, and any other line of the help
// text goes into the description as it is.
func manPage(help, version string, when time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH POPGATE 8 %q %q \"System Administration\"\n", when.Format("2006-01-02"), "popgate "+version)
	b.WriteString(".SH NAME\npopgate, sendmail, mailq, newaliases \\- mail gateway for a small office: POP3, SMTP, POP\\-before\\-SMTP\n")
	var commands, other []string
	synopsis := "popgate COMMAND [\\-\\-config FILE] [ARGS]"
	for _, line := range strings.Split(strings.TrimSpace(help), "\n") {
		line = strings.TrimRight(line, " \t\r")
		switch {
		case strings.HasPrefix(line, "usage: "):
			synopsis = roffEscape(strings.TrimPrefix(line, "usage: "))
		case line == "commands:" || line == "":
		case helpCommand.MatchString(line):
			m := helpCommand.FindStringSubmatch(line)
			commands = append(commands, fmt.Sprintf(".TP\n.B %s\n%s\n", m[1], roffEscape(m[2])))
		default:
			other = append(other, roffEscape(strings.TrimSpace(line)))
		}
	}
	fmt.Fprintf(&b, ".SH SYNOPSIS\n%s\n", synopsis)
	b.WriteString(`.SH DESCRIPTION
popgate serves POP3 over maildirs, accepts mail over SMTP for local
delivery and submission, queues outbound mail, and lets a client that
logged in over POP3 relay mail from its address for a while.
Installed as the system's mail transport agent, it is also called as
.BR sendmail ,
.B mailq
and
.BR newaliases ,
which are links to it.
`)
	for _, l := range other {
		b.WriteString(".PP\n" + l + "\n")
	}
	b.WriteString(".SH COMMANDS\n")
	b.WriteString(strings.Join(commands, ""))
	b.WriteString(`.SH FILES
.TP
.I /etc/popgate/popgate.toml
the configuration;
.B popgate config
prints every key with its documentation
.TP
.I /var/lib/popgate
mail, queue, relay grants, users and the TLS key
.SH SEE ALSO
.BR systemctl (1),
/usr/share/doc/popgate
`)
	return []byte(b.String())
}
