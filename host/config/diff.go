package config

import (
	"maps"
	"slices"
)

// Changed lists the keys (HCL paths) whose values differ between a and
// b, in the key table's order: what a reload (SIGHUP) has to apply or
// report as needing a restart.
func Changed(a, b *Config) []string {
	var out []string
	for _, k := range keys {
		var same bool
		switch {
		case k.labelled != "" || k.kind == kindEntries:
			same = maps.Equal(k.entries(a), k.entries(b))
		case k.kind == kindList:
			same = slices.Equal(k.getList(a), k.getList(b))
		default:
			same = k.get(a) == k.get(b)
		}
		if !same {
			out = append(out, k.path)
		}
	}
	return out
}
