package config

import (
	"flag"
	"fmt"
	"strings"
)

// pendingFlag is a flag value kept until the file and the environment
// have been applied, since flags take precedence over both.
type pendingFlag struct {
	k    *key
	flag string
	text string
}

type flagValue struct {
	k       *key
	name    string
	pending *[]pendingFlag
}

func (v *flagValue) String() string { return "" }

func (v *flagValue) Set(s string) error {
	*v.pending = append(*v.pending, pendingFlag{k: v.k, flag: v.name, text: s})
	return nil
}

// IsBoolFlag lets "-manifest-log-only" stand for "-manifest-log-only=true".
func (v *flagValue) IsBoolFlag() bool { return v.k != nil && v.k.kind == kindBool }

// registerFlags defines one flag per key on fs. Entry keys take
// NAME=VALUE ("-tier2-settings bucket=logs") or, in a labelled block,
// ID.ATTR=VALUE ("-tier0-stream 42.max_bytes=1GiB"); they may repeat.
func registerFlags(fs *flag.FlagSet, pending *[]pendingFlag) {
	done := map[string]bool{}
	for _, k := range keys {
		name := k.flagName()
		if done[name] {
			continue
		}
		done[name] = true
		fs.Var(&flagValue{k: k, name: name, pending: pending}, name, flagUsage(k))
	}
}

// flagUsage is the flag's help line: the key's meaning, then its default
// and its variable, as `aof2-host serve -h` shows them.
func flagUsage(k *key) string {
	u := k.doc
	if syntax := entrySyntax(k); syntax != "" {
		u = fmt.Sprintf("`%s`: %s (repeatable)", syntax, k.doc)
	}
	var def string
	switch {
	case k.kind == kindEntries || k.kind == kindList || k.labelled != "":
	case k.def == "":
		def = "default empty; "
	default:
		def = "default " + k.def + "; "
	}
	hcl := k.path
	if k.labelled != "" {
		hcl = fmt.Sprintf("%s \"<id>\" { %s }", k.labelled, k.attr())
	}
	return fmt.Sprintf("%s [%senv %s, HCL %s]", u, def, referenceEnv(k), hcl)
}

// entrySyntax is how an entry key's flag value is written ("" for
// other keys).
func entrySyntax(k *key) string {
	switch {
	case k.labelled != "":
		return "ID.ATTR=VALUE"
	case k.kind == kindEntries:
		return "NAME=VALUE"
	}
	return ""
}

// applyFlags applies the flag values in the order given.
func applyFlags(c *Config, pending []pendingFlag) error {
	var errs errorList
	for _, p := range pending {
		src := "flag -" + p.flag
		if p.k.labelled == "" && p.k.kind != kindEntries {
			errs.add(setKey(c, p.k, p.text, src))
			continue
		}
		entry, text, ok := strings.Cut(p.text, "=")
		k := p.k
		if k.labelled != "" {
			var attr string
			entry, attr, _ = strings.Cut(entry, ".")
			k = keyByPath[k.labelled+"."+attr]
			ok = ok && k != nil && k.labelled == p.k.labelled
		}
		if !ok || entry == "" {
			errs.add(&Error{Key: p.k.path, Value: quoteValue(p.text, p.k.kind == kindEntries), Source: src, Reason: "want " + entrySyntax(p.k)})
			continue
		}
		errs.add(setEntry(c, k, entry, text, src))
	}
	return errs.err()
}
