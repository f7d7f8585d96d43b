package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// completeCmd is the hidden command the completion scripts call: it
// prints, one per line, what may follow the words before the last one,
// the last being the word being typed. Written by hand over the command
// table rather than by switching to a CLI library: the table already
// holds every command, and each command's flags come from its own flag
// set, so the candidates cannot drift from what the commands accept.
const completeCmd = "__complete"

// runCompletion prints the completion script of a shell.
func runCompletion(_ context.Context, e *cmdEnv) error {
	args, err := e.parse(1, 1)
	if err != nil {
		return err
	}
	script, ok := completionScripts[args[0]]
	if !ok {
		return usagef("unknown shell %q: want bash, zsh or fish", args[0])
	}
	fmt.Fprint(e.stdout, script)
	return nil
}

// completions are the candidates for words[len-1] after words[:len-1].
func completions(ctx context.Context, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	done, cur := words[:len(words)-1], words[len(words)-1]
	if len(done) > 0 && done[0] == "help" {
		// help takes a command name: complete it, no flags.
		return slices.DeleteFunc(completions(ctx, words[1:]), func(c string) bool { return strings.HasPrefix(c, "-") || c == "help" })
	}
	var out []string
	add := func(cands ...string) {
		for _, c := range cands {
			if strings.HasPrefix(c, cur) && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	var c *command
	var rest []string
	if len(done) > 0 {
		c, rest = lookup(done)
	}
	switch {
	case len(done) == 0:
		for _, cmd := range commands {
			first, _, _ := strings.Cut(cmd.name, " ")
			add(first)
		}
		add("help")
		if strings.HasPrefix(cur, "-") {
			add("-version", "-h")
		}
	case c == nil && len(done) == 1:
		for _, cmd := range commands {
			if first, second, ok := strings.Cut(cmd.name, " "); ok && first == done[0] {
				add(second)
			}
		}
	case c == nil:
	case strings.HasPrefix(cur, "-"):
		for _, f := range commandFlags(ctx, c) {
			add("-" + f)
		}
	case c.name == "completion" && len(rest) == 0:
		add("bash", "zsh", "fish")
	}
	return out
}

// commandFlags are the names of a command's flags, read off the flag set
// it declares (as `-h` shows them).
func commandFlags(ctx context.Context, c *command) []string {
	e := &cmdEnv{cmd: c, stdout: io.Discard, stderr: io.Discard, args: []string{"-h"}, flags: flag.NewFlagSet(c.name, flag.ContinueOnError)}
	e.flags.SetOutput(io.Discard)
	_ = c.run(ctx, e)
	var names []string
	e.flags.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

var completionScripts = map[string]string{
	"bash": `# aof2-host completion for bash: source <(aof2-host completion bash)
_aof2_host() {
  local IFS=$'\n'
  COMPREPLY=($(aof2-host __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  if [ ${#COMPREPLY[@]} -eq 0 ]; then
    compopt -o default 2>/dev/null
  fi
}
complete -F _aof2_host aof2-host
`,
	"zsh": `#compdef aof2-host
# aof2-host completion for zsh: source <(aof2-host completion zsh)
_aof2_host() {
  local -a cands
  cands=("${(@f)$(aof2-host __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ -n "${cands[1]}" ]]; then
    compadd -- "${cands[@]}"
  else
    _files
  fi
}
compdef _aof2_host aof2-host
`,
	"fish": `# aof2-host completion for fish: aof2-host completion fish | source
function __aof2_host_complete
    set -l tokens (commandline -opc) (commandline -ct)
    aof2-host __complete $tokens[2..-1] 2>/dev/null
end
complete -c aof2-host -a '(__aof2_host_complete)'
`,
}
