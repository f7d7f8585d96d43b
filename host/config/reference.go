package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"unicode/utf8"
)

// Reference documents every key: its HCL path, variable, flag, default
// and meaning. `aof2-host serve -h` prints it.
func Reference() string {
	var b strings.Builder
	b.WriteString(`Configuration: defaults < HCL file < AOF2_* environment < flags.
The file is -config FILE, else $AOF2_CONFIG, else ./aof2.hcl when present.
Sizes: 4096 (bytes), 512KiB, 64MiB, 1.5GiB, 10GB (KiB/MiB/GiB/TiB are binary,
KB/MB/GB/TB decimal). Durations: 250ms, 10s, 1h30m. Booleans: true/false,
1/0, yes/no, on/off. Lists are comma-separated in variables and flags.
In the file, env("NAME") reads a host variable. An empty variable counts as
unset. Unknown keys, and unknown variables under a section's prefix
(AOF2_SEGMENT_…, AOF2_TIER2_…), are refused.

`)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s\n", referenceHead(k))
		fmt.Fprintf(&b, "    env %s, flag %s\n", referenceEnv(k), referenceFlag(k))
		for _, line := range wrap(k.doc, 72) {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	return b.String()
}

func referenceHead(k *key) string {
	typ := kindNames[k.kind]
	if k.kind == kindEnum {
		typ = "one of " + strings.Join(k.values, "|")
	}
	switch {
	case k.labelled != "":
		return fmt.Sprintf("%s \"<id>\" { %s }  (%s)", k.labelled, k.attr(), typ)
	case k.kind == kindEntries, k.kind == kindList:
		return fmt.Sprintf("%s  (%s)", k.path, typ)
	case k.def == "":
		return fmt.Sprintf("%s  (%s, default empty)", k.path, typ)
	}
	return fmt.Sprintf("%s  (%s, default %s)", k.path, typ, k.def)
}

func referenceEnv(k *key) string {
	switch {
	case k.labelled != "":
		return "AOF2_" + strings.ToUpper(strings.ReplaceAll(k.labelled, ".", "_")) + "_<ID>_" + strings.ToUpper(k.attr())
	case k.kind == kindEntries:
		return k.envName() + "_<NAME>"
	}
	return k.envName()
}

func referenceFlag(k *key) string {
	if s := entrySyntax(k); s != "" {
		return fmt.Sprintf("-%s %s (repeatable)", k.flagName(), strings.Replace(s, "ATTR", k.attr(), 1))
	}
	return "-" + k.flagName()
}

func wrap(s string, width int) []string {
	var lines []string
	var cur string
	for _, w := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// secretSetting says whether a plugin setting holds a credential, judged
// by its name (secret_access_key, account_key, sas_token, …), so it is
// never echoed in errors or in HCL.
func secretSetting(name string) bool {
	for _, s := range []string{"secret", "token", "password", "connection_string"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return strings.HasSuffix(name, "_key")
}

// HCL renders the effective configuration as a file Load reads back to
// the same values. Secrets (listen.auth_token and credential-like plugin
// settings) are left out, with a comment saying they are set.
func (c *Config) HCL() string {
	root := &hclBlock{}
	for _, k := range keys {
		switch {
		case k.labelled != "":
			entries := k.entries(c)
			parent := root.block(parentPath(k.labelled))
			name := k.labelled[strings.LastIndexByte(k.labelled, '.')+1:]
			for _, id := range slices.Sorted(maps.Keys(entries)) {
				b := &hclBlock{header: fmt.Sprintf("%s %s", name, hclString(id))}
				b.attr(k.attr(), hclString(entries[id]))
				parent.children = append(parent.children, b)
			}
		case k.kind == kindEntries:
			entries := k.entries(c)
			b := root.block(k.section())
			obj := &hclBlock{}
			var hidden []string
			for _, name := range slices.Sorted(maps.Keys(entries)) {
				if secretSetting(name) {
					hidden = append(hidden, name)
					continue
				}
				obj.attr(name, hclString(entries[name]))
			}
			b.attr(k.attr(), obj.object())
			for _, name := range hidden {
				b.comment(fmt.Sprintf("settings.%s is set (not shown)", name))
			}
		case k.secret:
			if k.get(c) != "" {
				root.block(k.section()).comment(k.attr() + " is set (not shown)")
			}
		default:
			root.block(k.section()).attr(k.attr(), hclValue(k, c))
		}
	}
	var b strings.Builder
	root.write(&b, "")
	return b.String()
}

func hclValue(k *key, c *Config) string {
	switch k.kind {
	case kindBool, kindInt:
		return k.get(c)
	case kindList:
		items := k.getList(c)
		quoted := make([]string, len(items))
		for i, it := range items {
			quoted[i] = hclString(it)
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	}
	return hclString(k.get(c))
}

// hclString quotes s as an HCL string literal, escaping template
// sequences so that "${" stays literal.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&b, `\u%04x`, r)
		case (r == '$' || r == '%') && strings.HasPrefix(s[i+1:], "{"):
			b.WriteRune(r)
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// hclBlock is a block being rendered: attributes (or comments) first,
// then nested blocks, in the order of the key table.
type hclBlock struct {
	header   string
	lines    [][2]string // name, value; name "#" is a comment
	children []*hclBlock
	byName   map[string]*hclBlock
}

func (b *hclBlock) attr(name, value string) { b.lines = append(b.lines, [2]string{name, value}) }
func (b *hclBlock) comment(text string)     { b.lines = append(b.lines, [2]string{"#", text}) }

// block returns the nested block at a dotted path, creating it.
func (b *hclBlock) block(path string) *hclBlock {
	if path == "" {
		return b
	}
	first, rest, _ := strings.Cut(path, ".")
	if b.byName == nil {
		b.byName = map[string]*hclBlock{}
	}
	child, ok := b.byName[first]
	if !ok {
		child = &hclBlock{header: first}
		b.byName[first] = child
		b.children = append(b.children, child)
	}
	return child.block(rest)
}

func (b *hclBlock) write(w *strings.Builder, indent string) {
	width := 0
	for _, l := range b.lines {
		if l[0] != "#" {
			width = max(width, len(l[0]))
		}
	}
	for _, l := range b.lines {
		if l[0] == "#" {
			fmt.Fprintf(w, "%s# %s\n", indent, l[1])
			continue
		}
		fmt.Fprintf(w, "%s%-*s = %s\n", indent, width, l[0], strings.ReplaceAll(l[1], "\n", "\n"+indent))
	}
	for i, child := range b.children {
		if i > 0 || len(b.lines) > 0 {
			w.WriteByte('\n')
		}
		fmt.Fprintf(w, "%s%s {\n", indent, child.header)
		child.write(w, indent+"  ")
		fmt.Fprintf(w, "%s}\n", indent)
	}
}

// object renders b's attributes as an HCL object expression.
func (b *hclBlock) object() string {
	if len(b.lines) == 0 {
		return "{}"
	}
	var w strings.Builder
	w.WriteString("{\n")
	b.write(&w, "  ")
	w.WriteString("}")
	return w.String()
}
