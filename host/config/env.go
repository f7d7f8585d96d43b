package config

import (
	"maps"
	"slices"
	"strings"
)

// EnvConfig names the configuration file, like -config (which wins).
const EnvConfig = "AOF2_CONFIG"

// envSectionPrefixes are the AOF2_<SECTION>_ prefixes of the blocks. An
// unknown variable under one of them is refused as a likely typo; every
// other unknown AOF2_ variable is left alone, because tests and emulators
// use that namespace too (AOF2_S3_ENDPOINT, AOF2_CRASH_SEED, …).
var envSectionPrefixes = func() []string {
	var out []string
	for s := range sections {
		if !strings.Contains(s, ".") {
			out = append(out, "AOF2_"+strings.ToUpper(s)+"_")
		}
	}
	slices.Sort(out)
	return out
}()

// keyByEnv indexes the keys that a single variable sets.
var keyByEnv = func() map[string]*key {
	m := map[string]*key{}
	for _, k := range keys {
		if k.labelled == "" && k.kind != kindEntries {
			m[k.envName()] = k
		}
	}
	return m
}()

// envMap turns KEY=VALUE entries into a map; a later entry wins, as in
// os.Getenv.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// applyEnv applies every AOF2_ variable that names a key. An empty
// variable counts as unset.
func applyEnv(c *Config, env map[string]string) error {
	var errs errorList
	for _, name := range slices.Sorted(maps.Keys(env)) {
		text := env[name]
		if !strings.HasPrefix(name, "AOF2_") || name == EnvConfig || text == "" {
			continue
		}
		src := "env " + name
		if k := keyByEnv[name]; k != nil {
			errs.add(setKey(c, k, text, src))
			continue
		}
		if k, entry, ok := entryForEnv(name); ok {
			errs.add(setEntry(c, k, entry, text, src))
			continue
		}
		for _, p := range envSectionPrefixes {
			if strings.HasPrefix(name, p) {
				errs.add(&Error{Key: name, Source: "environment", Reason: "unknown configuration variable (see aof2-host serve -h for the keys)"})
				break
			}
		}
	}
	return errs.err()
}

// entryForEnv matches the variables of entry keys:
// AOF2_TIER2_SETTINGS_<NAME> and AOF2_TIER0_STREAM_<ID>_MAX_BYTES.
func entryForEnv(name string) (*key, string, bool) {
	for _, k := range keys {
		switch {
		case k.labelled != "":
			prefix := "AOF2_" + strings.ToUpper(strings.ReplaceAll(k.labelled, ".", "_")) + "_"
			suffix := "_" + strings.ToUpper(k.attr())
			if mid, ok := strings.CutPrefix(name, prefix); ok && strings.HasSuffix(mid, suffix) && len(mid) > len(suffix) {
				return k, strings.TrimSuffix(mid, suffix), true
			}
		case k.kind == kindEntries:
			if rest, ok := strings.CutPrefix(name, k.envName()+"_"); ok && rest != "" {
				return k, strings.ToLower(rest), true
			}
		}
	}
	return nil, "", false
}

// setKey applies text to a scalar or list key and records where it came
// from.
func setKey(c *Config, k *key, text, src string) error {
	if err := k.set(c, text); err != nil {
		return &Error{Key: k.path, Value: quoteValue(text, k.secret), Source: src, Reason: err.Error()}
	}
	c.origins[k.path] = src
	return nil
}

// setEntry applies one entry of an entry key.
func setEntry(c *Config, k *key, entry, text, src string) error {
	path := entryPath(k, entry)
	secret := k.secret || (k.kind == kindEntries && secretSetting(entry))
	if err := k.setEntry(c, entry, text); err != nil {
		return &Error{Key: path, Value: quoteValue(text, secret), Source: src, Reason: err.Error()}
	}
	c.origins[path] = src
	return nil
}

// entryPath names one entry: tier2.settings.root, tier0.stream.42.max_bytes.
func entryPath(k *key, entry string) string {
	if k.labelled != "" {
		return k.labelled + "." + entry + "." + k.attr()
	}
	return k.path + "." + entry
}
