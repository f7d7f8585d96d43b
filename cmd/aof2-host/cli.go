package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/host/node"
	"github.com/aof2/aof2/pluginapi"
)

// Exit codes shared by every command (docs/adr-host.md#admin-commands).
const (
	exitOK       = 0
	exitUsage    = 1
	exitNotFound = 2
	exitAuth     = 3
	exitIO       = 4
	// exitClaimed: serve refused, another node is the prefix's writer, or
	// this data directory's history of a stream is not the prefix's
	// (docs/adr-fencing.md).
	exitClaimed = 5
)

// command is one (possibly two-word) subcommand.
type command struct {
	name    string // "manifest inspect"
	args    string // synopsis after the flags, e.g. "<stream>"
	summary string
	long    string // what it does, in a few lines
	example string
	run     func(ctx context.Context, c *cmdEnv) error
}

// cmdEnv is what a command runs with.
type cmdEnv struct {
	cmd            *command
	flags          *flag.FlagSet
	stdout, stderr io.Writer
	args           []string
}

// parse parses the command's flags (declared by the caller on e.flags
// before) and checks the positional argument count.
func (e *cmdEnv) parse(minArgs, maxArgs int) ([]string, error) {
	if err := e.flags.Parse(e.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err} // an unknown flag or a malformed value: exit 1
	}
	rest := e.flags.Args()
	if len(rest) < minArgs || (maxArgs >= 0 && len(rest) > maxArgs) {
		if len(rest) > 0 && maxArgs >= 0 && len(rest) > maxArgs {
			return nil, usagef("unexpected argument %q", rest[maxArgs])
		}
		return nil, usagef("expected %s", e.cmd.args)
	}
	return rest, nil
}

// usageError marks errors that are the caller's fault (exit 1).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// findingsError says a check ran and found problems; the findings were
// printed already.
type findingsError struct{ n int }

func (e findingsError) Error() string { return fmt.Sprintf("%d findings", e.n) }

func exitCode(err error) int {
	var ue usageError
	var fe findingsError
	var te tier2Error
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue), errors.Is(err, client.ErrBadRequest): // the host says the request cannot be
		return exitUsage
	case errors.As(err, &fe), errors.As(err, &te): // tier 2 unreachable, whatever the cause
		return exitIO
	case errors.Is(err, coordinator.ErrPrefixClaimed), errors.Is(err, coordinator.ErrHistoryDiverged):
		return exitClaimed
	case errors.Is(err, errUnauthenticated), errors.Is(err, pluginapi.ErrAuth):
		return exitAuth
	case errors.Is(err, core.ErrUnknownStream), errors.Is(err, core.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return exitNotFound
	}
	return exitIO
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			return run(ctx, append(args[1:], "-h"), stdout, stderr)
		}
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == completeCmd {
		for _, c := range completions(ctx, args[1:]) {
			fmt.Fprintln(stdout, c)
		}
		return exitOK
	}
	if args[0] == "-version" || args[0] == "--version" {
		args = append([]string{"version"}, args[1:]...)
	}
	c, rest := lookup(args)
	if c == nil {
		fmt.Fprintf(stderr, "aof2-host: unknown command %q\n\n", strings.Join(args[:min(2, len(args))], " "))
		printUsage(stderr)
		return exitUsage
	}
	e := &cmdEnv{cmd: c, stdout: stdout, stderr: stderr, args: rest, flags: flag.NewFlagSet(c.name, flag.ContinueOnError)}
	e.flags.SetOutput(stderr)
	e.flags.Usage = func() { printCommandHelp(stderr, c, e.flags) }
	err := c.run(ctx, e)
	code := exitCode(err)
	if err != nil && code != exitOK {
		var fe findingsError
		if !errors.As(err, &fe) {
			fmt.Fprintf(stderr, "aof2-host %s: %v\n", c.name, err)
		}
		if code == exitUsage {
			fmt.Fprintf(stderr, "Run 'aof2-host %s -h' for usage.\n", c.name)
		}
		if errors.Is(err, node.ErrLocked) {
			fmt.Fprintln(stderr, "A host is running on this data directory: pass -addr to go through it.")
		}
	}
	return code
}

// lookup finds the command named by the first one or two arguments.
func lookup(args []string) (*command, []string) {
	if len(args) >= 2 {
		for i := range commands {
			if commands[i].name == args[0]+" "+args[1] {
				return &commands[i], args[2:]
			}
		}
	}
	for i := range commands {
		if commands[i].name == args[0] {
			return &commands[i], args[1:]
		}
	}
	return nil, nil
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: aof2-host <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 usage, 2 not found, 3 auth failure, 4 I/O error or findings.")
	fmt.Fprintln(w, "Run 'aof2-host <command> -h' for a command's flags and an example.")
}

func printCommandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	synopsis := "aof2-host " + c.name + " [flags]"
	if c.args != "" {
		synopsis += " " + c.args
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", synopsis, c.summary)
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.long))
	}
	fmt.Fprintf(w, "\nexample:\n  %s\n", strings.ReplaceAll(strings.TrimSpace(c.example), "\n", "\n  "))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
}
