package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// sections are the block paths the key table implies; labelled ones
// take exactly one label.
var sections, labelledSections = func() (map[string]bool, map[string]bool) {
	all, labelled := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		s := k.section()
		if k.labelled != "" {
			labelled[s] = true
		}
		for ; s != ""; s = parentPath(s) {
			all[s] = true
		}
	}
	return all, labelled
}()

func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(section, name string) string {
	if section == "" {
		return name
	}
	return section + "." + name
}

// fileLoader applies one HCL file to a Config.
type fileLoader struct {
	c    *Config
	ctx  *hcl.EvalContext
	errs errorList
	// seen maps each block (path plus label) to where it was first opened.
	seen map[string]hcl.Pos
}

// applyFile applies the HCL native-syntax src, named name in errors, to c.
// It reports every problem it finds, not just the first.
func applyFile(c *Config, src []byte, name string, env map[string]string) error {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		var errs errorList
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				errs.add(diagError(d, ""))
			}
		}
		return errs.err()
	}
	l := &fileLoader{c: c, ctx: evalContext(env), seen: map[string]hcl.Pos{}}
	l.body(f.Body.(*hclsyntax.Body), "", "")
	return l.errs.err()
}

// evalContext offers env("NAME"), the value of a host environment
// variable ("" when unset), so secrets need not be written in the file.
func evalContext(env map[string]string) *hcl.EvalContext {
	envFn := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "name", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(env[args[0].AsString()]), nil
		},
	})
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": envFn}}
}

func posString(p hcl.Pos, file string) string {
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Column)
}

func rangeString(r hcl.Range) string { return posString(r.Start, r.Filename) }

func diagError(d *hcl.Diagnostic, key string) *Error {
	e := &Error{Key: key, Reason: d.Summary}
	if d.Detail != "" {
		e.Reason += ": " + d.Detail
	}
	if d.Subject != nil {
		e.Source = rangeString(*d.Subject)
	}
	return e
}

func (l *fileLoader) body(b *hclsyntax.Body, section, label string) {
	attrs := slices.SortedFunc(maps.Values(b.Attributes), func(x, y *hclsyntax.Attribute) int {
		return x.SrcRange.Start.Byte - y.SrcRange.Start.Byte
	})
	for _, a := range attrs {
		l.attribute(a, section, label)
	}
	for _, blk := range b.Blocks {
		l.block(blk, section)
	}
}

func (l *fileLoader) block(blk *hclsyntax.Block, section string) {
	path := joinPath(section, blk.Type)
	src := rangeString(blk.TypeRange)
	switch {
	case !sections[path] && keyByPath[path] != nil:
		l.errs.add(&Error{Key: path, Source: src, Reason: fmt.Sprintf("is an attribute, not a block: write %s = …", blk.Type)})
		return
	case !sections[path]:
		l.errs.add(&Error{Key: path, Source: src, Reason: "unknown block" + knownHint(section)})
		return
	}
	want := 0
	if labelledSections[path] {
		want = 1
	}
	if len(blk.Labels) != want {
		reason := "takes no label"
		if want == 1 {
			reason = fmt.Sprintf("takes one label, e.g. %s \"42\" { … }", blk.Type)
		}
		l.errs.add(&Error{Key: path, Source: src, Reason: reason})
		return
	}
	id := path + "\x00" + strings.Join(blk.Labels, "\x00")
	if first, dup := l.seen[id]; dup {
		l.errs.add(&Error{Key: path, Source: src, Reason: "block repeated; it was first opened at " + posString(first, blk.TypeRange.Filename)})
		return
	}
	l.seen[id] = blk.TypeRange.Start
	label := ""
	if want == 1 {
		label = blk.Labels[0]
	}
	l.body(blk.Body, path, label)
}

func (l *fileLoader) attribute(a *hclsyntax.Attribute, section, label string) {
	path := joinPath(section, a.Name)
	k := keyByPath[path]
	if k == nil || (k.labelled != "") != labelledSections[section] {
		reason := "unknown key" + knownHint(section)
		if sections[path] {
			reason = fmt.Sprintf("is a block, not an attribute: write %s { … }", a.Name)
		}
		l.errs.add(&Error{Key: path, Source: rangeString(a.NameRange), Reason: reason})
		return
	}
	v, diags := a.Expr.Value(l.ctx)
	if diags.HasErrors() {
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				l.errs.add(diagError(d, path))
			}
		}
		return
	}
	if v.IsNull() {
		return
	}
	src := rangeString(a.Expr.Range())
	switch {
	case k.labelled != "":
		l.scalar(v, k.labelled+"."+label+"."+k.attr(), src, func(text string) error { return k.setEntry(l.c, label, text) }, k.secret)
	case k.kind == kindEntries:
		l.entries(k, v, src)
	case k.kind == kindList:
		l.list(k, v, src)
	default:
		l.scalar(v, path, src, func(text string) error { return k.set(l.c, text) }, k.secret)
	}
}

// scalar converts a string, number or bool to text and hands it to set.
func (l *fileLoader) scalar(v cty.Value, path, src string, set func(string) error, secret bool) {
	text, err := valueText(v)
	if err == nil {
		err = set(text)
	}
	if err != nil {
		l.errs.add(&Error{Key: path, Value: quoteValue(text, secret), Source: src, Reason: err.Error()})
		return
	}
	l.c.origins[path] = src
}

func (l *fileLoader) list(k *key, v cty.Value, src string) {
	if !v.IsKnown() || !(v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType()) {
		l.errs.add(&Error{Key: k.path, Source: src, Reason: "want a list of strings, e.g. [\"AWS_PROFILE\"]"})
		return
	}
	var items []string
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		text, err := valueText(ev)
		if err != nil {
			l.errs.add(&Error{Key: k.path, Source: src, Reason: err.Error()})
			return
		}
		items = append(items, text)
	}
	if err := k.setList(l.c, items); err != nil {
		l.errs.add(&Error{Key: k.path, Source: src, Reason: err.Error()})
		return
	}
	l.c.origins[k.path] = src
}

func (l *fileLoader) entries(k *key, v cty.Value, src string) {
	if !v.IsKnown() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
		l.errs.add(&Error{Key: k.path, Source: src, Reason: "want a map, e.g. { root = \"/srv/aof2\" }"})
		return
	}
	for it := v.ElementIterator(); it.Next(); {
		nv, ev := it.Element()
		name := nv.AsString()
		if ev.IsNull() {
			continue
		}
		l.scalar(ev, k.path+"."+name, src, func(text string) error { return k.setEntry(l.c, name, text) }, secretSetting(name))
	}
}

// valueText turns an HCL string, number or bool into the text the key's
// parser reads: 4096 and "4096" are the same size, true and "true" the
// same bool.
func valueText(v cty.Value) (string, error) {
	if !v.IsWhollyKnown() || v.IsNull() || !v.Type().IsPrimitiveType() {
		return "", fmt.Errorf("want a string, number or bool, not %s", v.Type().FriendlyName())
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		return "", err
	}
	return s.AsString(), nil
}

func quoteValue(text string, secret bool) string {
	if secret {
		return ""
	}
	return strconv.Quote(text)
}

// knownHint lists the keys and blocks directly inside section.
func knownHint(section string) string {
	var names []string
	for _, k := range keys {
		if k.section() == section {
			names = append(names, k.attr())
		}
	}
	for s := range sections {
		if parentPath(s) == section {
			names = append(names, s[strings.LastIndexByte(s, '.')+1:]+" { }")
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	where := "at the top level"
	if section != "" {
		where = "in " + section
	}
	return fmt.Sprintf(" (known %s: %s)", where, strings.Join(names, ", "))
}
