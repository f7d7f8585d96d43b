package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/config"
)

// runRestore rebuilds the data directory from tier 2 (docs/adr-restore.md).
func runRestore(ctx context.Context, e *cmdEnv) error {
	cfgPath := e.flags.String("config", "", "host config file to take data_dir, segment.size, the manifest settings and the plugin from")
	dataDir := e.flags.String("data-dir", "", "data directory to rebuild (default: the config's data_dir, else ./data)")
	pluginDir := e.flags.String("plugin-dir", "", "directory of the aof2-plugin-<name> binaries (default: the config's plugin_dir, else this binary's directory)")
	streamArg := e.flags.String("stream", "", "restore only these streams (comma-separated ids; default: every stream tier 2 holds)")
	asJSON := e.flags.Bool("json", false, "print the report as JSON")
	concurrency := e.flags.Int("concurrency", 0, "tier-2 requests in flight (default: tier2.max_concurrency); restore time is mostly one small ranged read per segment")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	var only []types.StreamID
	if *streamArg != "" {
		for _, f := range strings.Split(*streamArg, ",") {
			id, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				return usagef("-stream %q: want stream ids", *streamArg)
			}
			only = append(only, types.StreamID(id))
		}
	}
	cfg, release, err := lockForPrefix(*cfgPath, *dataDir, *pluginDir, "restore reads tier 2", "stop the host before restoring into its data directory")
	if err != nil {
		return err
	}
	defer func() { _ = release() }()
	if *concurrency < 0 || *concurrency > 1024 {
		return usagef("-concurrency %d: want 1 to 1024", *concurrency)
	}
	if *concurrency > 0 {
		cfg.Tier2.MaxConcurrency = *concurrency
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "aof2", Level: hclog.Warn, Output: e.stderr})
	sess, err := openTier2(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer sess.close()
	return restoreAndReport(ctx, e, cfg, sess, logger, only, *asJSON)
}

// restoreAndReport restores the streams of only (nil: all) into
// cfg.DataDir and prints the report; the caller holds the directory's
// lock and the prefix's writer claim.
func restoreAndReport(ctx context.Context, e *cmdEnv, cfg *config.Config, sess *tier2Session, logger hclog.Logger, only []types.StreamID, asJSON bool) error {
	rep, err := restore.Run(ctx, restore.Config{DataDir: cfg.DataDir, Remote: sess.store, Manifest: cfg.CoreConfig().Manifest,
		SegmentSize: cfg.Segment.Size, ReserveSegments: cfg.Tier2.ReserveSegments, Concurrency: max(cfg.Tier2.MaxConcurrency, 4), Logger: logger.Named("restore")}, only)
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil {
			return jerr
		}
	} else {
		printRestore(e, rep, sess.desc)
	}
	if err != nil {
		return fmt.Errorf("restore did not finish (rerun it; serve refuses to start until it does): %w", err)
	}
	return nil
}

func printRestore(e *cmdEnv, rep restore.Report, from string) {
	fmt.Fprintf(e.stdout, "restore from %s\n", from)
	if rep.StoreID != "" {
		fmt.Fprintf(e.stdout, "store %s\n", rep.StoreID)
	}
	var cold, lost int
	for _, s := range rep.Streams {
		switch {
		case s.Error != "":
			fmt.Fprintf(e.stdout, "stream %d: FAILED: %s\n", s.Stream, s.Error)
			continue
		case s.Skipped:
			fmt.Fprintf(e.stdout, "stream %d: already in the data directory, skipped\n", s.Stream)
			continue
		}
		from := "chunk 0"
		if s.Snapshot != nil {
			from = fmt.Sprintf("snapshot %d", *s.Snapshot)
		}
		fmt.Fprintf(e.stdout, "stream %d: %d records in %d cold segments; history from %s + %d chunks; %s\n",
			s.Stream, s.Records, s.Cold, from, s.Chunks, s.Duration.Round(1e6))
		if len(s.Lost) > 0 {
			fmt.Fprintf(e.stdout, "  %d segment ids not in tier 2, recorded as lost (their records were not uploaded; the ids are never reused): %v\n", len(s.Lost), s.Lost)
		}
		if len(s.MissingFromTier2) > 0 {
			fmt.Fprintf(e.stdout, "  DATA LOSS: %d segments the history records as uploaded are gone from tier 2 (restored as lost): %v\n", len(s.MissingFromTier2), s.MissingFromTier2)
		}
		for _, sk := range s.SkippedSnapshots {
			fmt.Fprintf(e.stdout, "  snapshot passed over: %s\n", sk)
		}
		cold += s.Cold
		lost += len(s.Lost)
	}
	fmt.Fprintf(e.stdout, "%d streams, %d cold segments, %d lost segment ids, %s\n", len(rep.Streams), cold, lost, rep.Duration.Round(1e6))
}
