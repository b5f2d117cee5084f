package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlags returns a flag set that reports errors as usage errors instead
// of exiting, with the --config flag every subcommand takes.
func newFlags(name string, e *env) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("popgate "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := fs.String("config", "", "configuration file (default: the embedded configuration)")
	return fs, cfg
}

// helpRequested carries a subcommand's flag list for -h/--help: run prints
// it on standard output and exits 0.
type helpRequested struct{ text string }

func (h *helpRequested) Error() string { return h.text }

// flagHelp lists fs's flags with their defaults, as -h/--help asks.
func flagHelp(fs *flag.FlagSet) error {
	var b strings.Builder
	fmt.Fprintf(&b, "usage of %s (flags may come before or after the arguments):\n", fs.Name())
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return &helpRequested{text: b.String()}
}

// parseFlags parses args, turning flag errors into usage errors. Flags may
// come before, between or after the positional arguments
// (`popgate grants revoke 192.0.2.1 --config FILE`); "--" ends the flags.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return flagHelp(fs)
			}
			return usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments in fs.Args().
	return fs.Parse(append([]string{"--"}, positional...))
}

// commandConfig is the common start of a subcommand that takes --config
// and between minArgs and maxArgs positional arguments: it parses them and
// loads the configuration.
func commandConfig(e *env, name string, args []string, minArgs, maxArgs int) (cfg *Config, path string, rest []string, err error) {
	fs, p := newFlags(name, e)
	if err := parseFlags(fs, args); err != nil {
		return nil, "", nil, err
	}
	switch {
	case fs.NArg() > maxArgs && maxArgs == 0:
		return nil, "", nil, usagef("unexpected argument %q", fs.Arg(0))
	case fs.NArg() < minArgs || fs.NArg() > maxArgs:
		return nil, "", nil, usagef("wrong number of arguments")
	}
	cfg, err = loadConfig(*p)
	if err != nil {
		return nil, "", nil, err
	}
	return cfg, *p, fs.Args(), nil
}

// configCommand prints the configuration in effect (the defaults when no
// file is given) with every key documented.
func configCommand(_ context.Context, e *env, args []string) error {
	cfg, _, _, err := commandConfig(e, "config", args, 0, 0)
	if err != nil {
		return err
	}
	return writeConfigDoc(e.stdout, cfg)
}

// checkCommand validates the configuration and the files it names, and
// prints a short summary of what would be served.
func checkCommand(_ context.Context, e *env, args []string) error {
	cfg, path, _, err := commandConfig(e, "check", args, 0, 0)
	if err != nil {
		return err
	}
	if err := checkFiles(cfg, e.stderr); err != nil {
		return err
	}
	src := path
	if src == "" {
		src = "embedded default"
	}
	fmt.Fprintf(e.stdout, "configuration ok (%s)\n", src)
	fmt.Fprintf(e.stdout, "  hostname  %s\n  domains   %s\n  data_dir  %s\n  mail_dir  %s\n  users     %s\n",
		cfg.Hostname, strings.Join(cfg.Domains, ", "), cfg.DataDir, cfg.mailDir(), cfg.usersFile())
	for _, l := range cfg.listeners() {
		if len(l.addrs) > 0 {
			fmt.Fprintf(e.stdout, "  %-17s %s\n", l.key, strings.Join(l.addrs, ", "))
		}
	}
	fmt.Fprintf(e.stdout, "  relay.pop_ttl     %v, %d trusted networks, %d mirror(s)\n",
		cfg.Relay.PopTTL.Duration, len(cfg.Relay.TrustedNetworks), len(cfg.Relay.Mirror))
	return nil
}
