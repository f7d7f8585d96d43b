package config

import (
	"github.com/aof2/aof2/internal/bytesize"

	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

type kind uint8

const (
	kindString kind = iota
	kindBool
	kindInt
	kindSize
	kindDuration
	kindEnum
	kindList
	kindPercent
	// kindEntries is a map of named values: an HCL object attribute
	// (tier2.settings) or an attribute of a labelled block
	// (tier0.stream "<id>" { max_bytes }).
	kindEntries
)

var kindNames = map[kind]string{
	kindString: "string", kindBool: "bool", kindInt: "integer", kindSize: "size",
	kindDuration: "duration", kindEnum: "enum", kindList: "list of strings", kindEntries: "map", kindPercent: "percent",
}

// key is one configuration key. Its HCL path is the single declaration
// from which the environment variable, the flag, the reference text and
// the effective-config rendering all derive.
type key struct {
	path   string // "segment.size"; for labelled keys "tier0.stream.max_bytes"
	doc    string
	def    string // default as an operator writes it; "" when empty
	kind   kind
	values []string // allowed values of an enum
	secret bool
	// labelled is the path of the enclosing labelled block
	// ("tier0.stream"); the block's label names the entry.
	labelled string

	// Scalars and lists parse text (lists: comma-separated outside HCL).
	set func(c *Config, text string) error
	get func(c *Config) string
	// Lists are also set item by item from HCL.
	setList func(c *Config, items []string) error
	getList func(c *Config) []string
	// Entries: one named value at a time.
	setEntry func(c *Config, name, text string) error
	entries  func(c *Config) map[string]string
}

// envName is the variable that overrides the key. Entry keys take the
// entry's name in the middle (labelled) or at the end (maps).
func (k *key) envName() string {
	return "AOF2_" + strings.ToUpper(strings.ReplaceAll(k.path, ".", "_"))
}

// flagName is the flag that overrides the key; a labelled key shares the
// flag of its block ("-tier0-stream 42.max_bytes=1GiB").
func (k *key) flagName() string {
	p := k.path
	if k.labelled != "" {
		p = k.labelled
	}
	return strings.NewReplacer(".", "-", "_", "-").Replace(p)
}

// attr is the key's last path element, as written inside its block.
func (k *key) attr() string { return k.path[strings.LastIndexByte(k.path, '.')+1:] }

// section is the block the key lives in ("" for top-level keys).
func (k *key) section() string {
	if k.labelled != "" {
		return k.labelled
	}
	if i := strings.LastIndexByte(k.path, '.'); i >= 0 {
		return k.path[:i]
	}
	return ""
}

func stringKey(path, def, doc string, field func(*Config) *string, check func(string) error) *key {
	return &key{
		path: path, def: def, doc: doc, kind: kindString,
		set: func(c *Config, text string) error {
			if check != nil {
				if err := check(text); err != nil {
					return err
				}
			}
			*field(c) = text
			return nil
		},
		get: func(c *Config) string { return *field(c) },
	}
}

func enumKey(path, def string, values []string, doc string, field func(*Config) *string) *key {
	return &key{
		path: path, def: def, doc: doc, kind: kindEnum, values: values,
		set: func(c *Config, text string) error {
			v := strings.ToLower(strings.TrimSpace(text))
			if !slices.Contains(values, v) {
				return fmt.Errorf("want one of %s", strings.Join(values, ", "))
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return *field(c) },
	}
}

func boolKey(path string, def bool, doc string, field func(*Config) *bool) *key {
	return &key{
		path: path, def: strconv.FormatBool(def), doc: doc, kind: kindBool,
		set: func(c *Config, text string) error {
			v, err := parseBool(text)
			if err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) },
	}
}

// parseBool accepts the words core/manifest's AOF2_MANIFEST_LOG_ONLY
// accepts, so the variable means the same whichever reads it.
func parseBool(text string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, errors.New("want true or false (also 1/0, yes/no, on/off)")
}

func intKey(path string, def int, doc string, field func(*Config) *int, check func(int) error) *key {
	return &key{
		path: path, def: strconv.Itoa(def), doc: doc, kind: kindInt,
		set: func(c *Config, text string) error {
			v, err := strconv.Atoi(strings.TrimSpace(text))
			if err != nil {
				return errors.New("want an integer")
			}
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*field(c)) },
	}
}

// sizeKey declares a byte count. With disable set, "-1" is accepted too
// and means "no bound".
func sizeKey(path string, def int64, doc string, field func(*Config) *int64, disable bool, check func(int64) error) *key {
	return &key{
		path: path, def: bytesize.Format(def), doc: doc, kind: kindSize,
		set: func(c *Config, text string) error {
			v, err := parseSizeValue(text, disable)
			if err != nil {
				return err
			}
			if check != nil && v != -1 {
				if err := check(v); err != nil {
					return err
				}
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return bytesize.Format(*field(c)) },
	}
}

func parseSizeValue(text string, disable bool) (int64, error) {
	if disable && strings.TrimSpace(text) == "-1" {
		return -1, nil
	}
	return bytesize.Parse(text)
}

// durationKey declares a Go duration ("10ms", "1h30m"). Negative
// durations are refused unless negative is set.
func durationKey(path string, def time.Duration, doc string, field func(*Config) *time.Duration, negative bool, check func(time.Duration) error) *key {
	return &key{
		path: path, def: formatDuration(def), doc: doc, kind: kindDuration,
		set: func(c *Config, text string) error {
			v, err := time.ParseDuration(strings.TrimSpace(text))
			if err != nil {
				return errors.New(`want a duration such as "250ms", "10s" or "1h30m"`)
			}
			if v < 0 && !negative {
				return errors.New("must not be negative")
			}
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return formatDuration(*field(c)) },
	}
}

// percentKey declares a share from 0 to 100 percent, written "90%" or 90
// (decimals allowed: "92.5%"), kept as the number of percent.
func percentKey(path string, def float64, doc string, field func(*Config) *float64) *key {
	return &key{
		path: path, def: FormatPercent(def), doc: doc, kind: kindPercent,
		set: func(c *Config, text string) error {
			v, err := ParsePercent(text)
			if err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return FormatPercent(*field(c)) },
	}
}

// ParsePercent reads "90%", "90" or "92.5%" as a number of percent from 0
// to 100.
func ParsePercent(text string) (float64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(text), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(v) {
		return 0, errors.New(`want a percentage such as "90%"`)
	}
	if v < 0 || v > 100 {
		return 0, errors.New("want 0% to 100%")
	}
	return v, nil
}

// FormatPercent writes v percent as "90%" (shortest exact form).
func FormatPercent(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }

// formatDuration writes d as time.Duration.String does, without the
// trailing zero units ("5m", not "5m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// listKey declares a list of strings: an HCL list, or comma-separated in
// a variable or flag. Each item is checked.
func listKey(path, doc string, field func(*Config) *[]string, check func(string) error) *key {
	setList := func(c *Config, items []string) error {
		out := make([]string, 0, len(items))
		for _, it := range items {
			if check != nil {
				if err := check(it); err != nil {
					return fmt.Errorf("item %q: %w", it, err)
				}
			}
			out = append(out, it)
		}
		*field(c) = out
		return nil
	}
	return &key{
		path: path, doc: doc, kind: kindList,
		set: func(c *Config, text string) error {
			var items []string
			for it := range strings.SplitSeq(text, ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
			return setList(c, items)
		},
		setList: setList,
		get:     func(c *Config) string { return strings.Join(*field(c), ",") },
		getList: func(c *Config) []string { return *field(c) },
	}
}

// inRange returns a check refusing values outside [lo, hi].
func inRange[T cmp.Ordered](lo, hi T, format func(T) string) func(T) error {
	return func(v T) error {
		if v < lo || v > hi {
			return fmt.Errorf("want %s to %s", format(lo), format(hi))
		}
		return nil
	}
}

func atLeast[T cmp.Ordered](lo T, format func(T) string) func(T) error {
	return func(v T) error {
		if v < lo {
			return fmt.Errorf("want at least %s", format(lo))
		}
		return nil
	}
}
