package main

import (
	"context"
	"sort"
	"strings"
)

// importCommand moves a sendmail + qpopper server's data into popgate:
// mbox spools with their UIDLs, passwords from /etc/shadow, and the
// configuration in /etc/mail. Each kind lives in its own file.
func importCommand(ctx context.Context, e *env, args []string) error {
	kinds := map[string]func(context.Context, *env, []string) error{
		"mbox":     importMbox,
		"spool":    importSpool,
		"passwd":   importPasswd,
		"sendmail": importSendmail,
	}
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 {
		return usagef("usage: popgate import %s [--config FILE] ARGS", strings.Join(names, "|"))
	}
	run, ok := kinds[args[0]]
	if !ok {
		return usagef("unknown import %q (want one of %s)", args[0], strings.Join(names, ", "))
	}
	return run(ctx, e, args[1:])
}
