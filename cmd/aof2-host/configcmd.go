package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/aof2/aof2/host/config"
)

// runConfigReference prints every configuration key (docs/config.md is
// this command's Markdown output).
func runConfigReference(_ context.Context, e *cmdEnv) error {
	format := e.flags.String("format", "text", "text, or markdown (the docs/config.md page)")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	switch *format {
	case "text":
		fmt.Fprint(e.stdout, config.Reference())
	case "markdown":
		fmt.Fprint(e.stdout, config.ReferenceMarkdown())
	default:
		return usagef("-format %q: want text or markdown", *format)
	}
	return nil
}

// runConfigValidate loads the configuration exactly as serve would (file,
// AOF2_* variables and serve's flags), checks every key and the plugin
// binary, and prints a summary; -check-plugin also launches the plugin
// as `plugins check` does. An invalid configuration exits 1 with every
// problem listed.
func runConfigValidate(ctx context.Context, e *cmdEnv) error {
	// serve's flags, so that a unit file's command line validates as is.
	checkPlugin := e.flags.Bool("check-plugin", false, "also launch the tier-2 plugin: handshake, contract, Configure and Probe (as `aof2-host plugins check`)")
	cfg, err := loadServeConfig(e)
	if err != nil {
		return err
	}
	src := cfg.File
	if src == "" {
		src = "no file (defaults, environment and flags)"
	}
	fmt.Fprintf(e.stdout, "config ok: %s\n", src)
	fmt.Fprintf(e.stdout, "  data_dir  %s\n", cfg.DataDir)
	fmt.Fprintf(e.stdout, "  listen    grpc=%s http=%s\n", orNone(cfg.Listen.GRPC), orNone(cfg.Listen.HTTP))
	if cfg.Tier2Enabled() {
		launch, err := cfg.PluginLaunch()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "  tier2     plugin %s (%s), prefix %q\n", launch.Name, launch.Path, cfg.Tier2.Prefix)
	} else {
		fmt.Fprintln(e.stdout, "  tier2     none")
	}
	if !*checkPlugin {
		return nil
	}
	if !cfg.Tier2Enabled() {
		return usagef("-check-plugin: no tier-2 plugin is configured")
	}
	return checkPluginLaunch(ctx, e, cfg, false)
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(off)"
	}
	return s
}

// loadServeConfig loads the configuration from serve's sources and flags
// (declared on e.flags by the load), as serve and config validate take it.
func loadServeConfig(e *cmdEnv) (*config.Config, error) {
	cfg, err := config.Load(e.args, os.Environ(), config.WithFlagSet(e.flags))
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if e.flags.NArg() > 0 {
		return nil, usagef("unexpected argument %q", e.flags.Arg(0))
	}
	return cfg, nil
}
