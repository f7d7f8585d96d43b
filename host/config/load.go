package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultFile is read when neither -config nor AOF2_CONFIG names a file
// and it exists in the working directory.
const DefaultFile = "aof2.hcl"

// Option adjusts Load.
type Option func(*options)

type options struct {
	flags       *flag.FlagSet
	defaultFile string
	skipPlugin  bool
	executable  func() (string, error)
}

// WithFlagSet registers the configuration flags on fs (which must not
// define -config or a key's flag itself) and parses args with it, so a
// command can add flags of its own and read fs.Args(). Without it Load
// uses a private set and refuses positional arguments.
func WithFlagSet(fs *flag.FlagSet) Option { return func(o *options) { o.flags = fs } }

// WithDefaultFile replaces DefaultFile; "" disables the implicit file.
func WithDefaultFile(path string) Option { return func(o *options) { o.defaultFile = path } }

// SkipPluginLookup loads without looking for the plugin binary (checking
// sample configs on a machine without plugins). PluginLaunch still
// resolves it.
func SkipPluginLookup() Option { return func(o *options) { o.skipPlugin = true } }

// WithExecutable replaces os.Executable, whose directory holds the
// plugins when plugin_dir is empty.
func WithExecutable(fn func() (string, error)) Option {
	return func(o *options) { o.executable = fn }
}

// Load builds the configuration of `aof2-host serve`: the defaults, then
// the HCL file, then AOF2_* variables from environ (KEY=VALUE entries, as
// os.Environ returns), then the flags in args; each overrides the one
// before. The file is -config, else $AOF2_CONFIG (either must exist), else
// ./aof2.hcl when present. The result is validated; any error names the
// key, the value and where it came from, and every bad key of a phase is
// reported at once. -h returns flag.ErrHelp (print Reference then).
func Load(args, environ []string, opts ...Option) (*Config, error) {
	o := options{defaultFile: DefaultFile, executable: os.Executable}
	for _, opt := range opts {
		opt(&o)
	}
	fs := o.flags
	if fs == nil {
		fs = flag.NewFlagSet("aof2-host serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
	}
	var pending []pendingFlag
	registerFlags(fs, &pending)
	file := fs.String("config", "", "HCL configuration `file` (default ./aof2.hcl when present; env "+EnvConfig+")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, flag.ErrHelp
		}
		return nil, &Error{Source: "command line", Reason: err.Error(), Err: err}
	}
	if o.flags == nil && fs.NArg() > 0 {
		return nil, &Error{Source: "command line", Reason: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}

	env := envMap(environ)
	c := newDefaults(o)
	var errs errorList
	path, src := *file, "flag -config"
	if path == "" {
		path, src = env[EnvConfig], "env "+EnvConfig
	}
	if path == "" && o.defaultFile != "" {
		if _, err := os.Stat(o.defaultFile); err == nil {
			path, src = o.defaultFile, "default"
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &Error{Key: "config", Value: fmt.Sprintf("%q", path), Source: src, Reason: "cannot read the configuration file", Err: err}
		}
		c.File = path
		errs.add(applyFile(c, data, path, env))
	}
	errs.add(applyEnv(c, env))
	errs.add(applyFlags(c, pending))
	if err := errs.err(); err != nil {
		return nil, err
	}
	c.finish()
	if err := c.absPaths(); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Defaults returns the built-in configuration: data in ./data, the fs
// plugin rooted in ./data/tier2, listeners on loopback. It is what Load
// returns with no file, variables or flags, except that Load also makes
// the paths absolute and validates.
func Defaults() *Config {
	c := newDefaults(options{executable: os.Executable})
	c.finish()
	return c
}

func newDefaults(o options) *Config {
	c := &Config{origins: map[string]string{}, opts: o}
	for _, k := range keys {
		if k.set == nil {
			continue
		}
		if err := k.set(c, k.def); err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", k.path, err))
		}
	}
	return c
}

// finish fills values that derive from others once every source has been
// applied: the fs backend's root follows data_dir.
func (c *Config) finish() {
	if c.Tier2Enabled() && c.Tier2.Plugin == "fs" && c.Tier2.Settings["root"] == "" {
		if c.Tier2.Settings == nil {
			c.Tier2.Settings = map[string]string{}
		}
		c.Tier2.Settings["root"] = filepath.Join(c.DataDir, "tier2")
		c.origins["tier2.settings.root"] = "default (<data_dir>/tier2)"
	}
}
