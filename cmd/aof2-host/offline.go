package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/host/node"
)

func runDump(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	asJSON := e.flags.Bool("json", false, "print JSON instead of the table")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	d, err := t.dump(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return d.WriteJSON(e.stdout)
	}
	return d.WriteTable(e.stdout)
}

func runSegmentsList(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	stream := e.flags.String("stream", "", "only this stream")
	tier := e.flags.String("tier", "", "only segments with a copy in this tier: 0, 1 or 2")
	asJSON := e.flags.Bool("json", false, "print JSON rows")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	if !dump.ValidTier(*tier) {
		return usagef("-tier %q: want 0, 1 or 2", *tier)
	}
	var sp *uint64
	if *stream != "" {
		id, err := parseStream(*stream)
		if err != nil {
			return err
		}
		sp = &id
	}
	d, err := t.dump(ctx)
	if err != nil {
		return err
	}
	if sp != nil && !slices.ContainsFunc(d.Streams, func(s dump.Stream) bool { return s.ID == *sp }) {
		return fmt.Errorf("stream %d: %w", *sp, core.ErrUnknownStream)
	}
	rows := d.Segments(sp, *tier)
	if *asJSON {
		return writeJSON(e, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSEGMENT\tBASE\tRECORDS\tBYTES\tSEALED\tT0\tT1\tT2\tRESIDENCY")
	for _, g := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%v\t%s\t%s\t%s\t%s\n", g.Stream, g.ID, g.BaseRecord, g.Records, g.Bytes, g.Sealed,
			yn(g.Tier0), yn(g.Tier1), yn(g.Tier2), g.Residency)
	}
	return tw.Flush()
}

func yn(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

func writeJSON(e *cmdEnv, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func parseStream(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usagef("stream id %q is not an unsigned integer", s)
	}
	return id, nil
}

// streamDir finds stream id's directory under the data directory.
func streamDir(dataDir string, id uint64) (string, error) {
	dir := filepath.Join(dataDir, "streams", strconv.FormatUint(id, 10))
	if _, err := vfs.OS.Stat(dir); err != nil {
		return "", fmt.Errorf("stream %d in %s: %w", id, dataDir, core.ErrUnknownStream)
	}
	return dir, nil
}

// allStreams lists the stream ids present in the data directory.
func allStreams(dataDir string) ([]uint64, error) {
	names, err := vfs.OS.List(filepath.Join(dataDir, "streams"))
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	var ids []uint64
	for _, n := range names {
		if id, err := strconv.ParseUint(n, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func runManifestInspect(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	stream := e.flags.String("stream", "", "the stream to inspect (required)")
	records := e.flags.Bool("records", false, "decode and list every record of every chunk")
	asJSON := e.flags.Bool("json", false, "print the whole inspection as JSON")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	if *stream == "" {
		return usagef("-stream is required")
	}
	if err := offlineOnly(e.flags); err != nil {
		return err
	}
	ins, err := streamInspectors(t, *stream)
	if err != nil {
		return err
	}
	in, err := ins[0].Inspect(ctx, manifest.InspectOptions{Records: *records})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e, in)
	}
	return writeInspection(e, in, *records)
}

func writeInspection(e *cmdEnv, in *manifest.Inspection, records bool) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	r := in.Replay
	fmt.Fprintf(tw, "stream %d manifest (%s)\n", in.StreamID, in.Dir)
	fmt.Fprintf(tw, "replay: %d chunks, %d records applied, snapshot %d, journal lag %d B, last chunk lag %v, %d corruption events\n\n",
		r.ChunksInspected, r.RecordsApplied, r.SnapshotID, r.JournalLagBytes, r.LastChunkLag, r.CorruptionEvents)
	fmt.Fprintln(tw, "CHUNK\tFILE\tSIZE\tBASE\tRECORDS\tSEALED\tUPLOADED\tCRC\tUNCOMMITTED\tERROR")
	for _, c := range in.Chunks {
		sealed, uploaded, base := "-", "-", "-"
		if h := c.Header; h != nil {
			sealed, uploaded, base = yn(h.Flags.Sealed()), yn(h.Flags.Uploaded()), strconv.FormatUint(h.BaseRecord, 10)
		}
		crc := "ok"
		if !c.CRCValid || !c.HeaderValid {
			crc = "BAD"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%s\n", c.Index, c.File, c.FileSize, base, c.RecordCount, sealed, uploaded, crc, c.UncommittedBytes, c.Error)
		if records {
			for _, rec := range c.Records {
				body, _ := json.Marshal(rec.Record)
				fmt.Fprintf(tw, "\t  #%d @%d\t%s\t%s\n", rec.Ordinal, rec.Offset, rec.Type, body)
			}
		}
	}
	if len(in.Snapshots) > 0 {
		fmt.Fprintln(tw, "\nSNAPSHOT\tFILE\tCHUNK\tOFFSET\tSEGMENTS\tBYTES\tERROR")
		for _, s := range in.Snapshots {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%s\n", s.ID, s.File, s.ChunkIndex, s.ChunkOffset, s.Segments, s.Bytes, s.Error)
		}
	}
	fmt.Fprintf(tw, "\n%d segments in the folded state\n", len(in.Segments))
	return tw.Flush()
}

func runManifestVerify(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	stream := e.flags.String("stream", "", "verify only this stream (default: every stream)")
	logOnly := e.flags.Bool("log-only", false, "skip the JSON-view parity check (manifest.log_only deployments)")
	skipTier2 := e.flags.Bool("skip-tier2", false, "verify the local manifests only: do not launch the plugin or ask tier 2 for any object")
	pluginDir := e.flags.String("plugin-dir", "", "directory of the aof2-plugin-<name> binaries (default: the config's plugin_dir, else this binary's directory)")
	asJSON := e.flags.Bool("json", false, "print findings as JSON")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	if err := offlineOnly(e.flags); err != nil {
		return err
	}
	ins, err := streamInspectors(t, *stream)
	if err != nil {
		return err
	}
	// Tier 2 first: if it cannot be reached, say so before any "ok".
	notChecked := "tier 2 not checked (-skip-tier2): only the local manifests were verified"
	var sess *tier2Session
	if !*skipTier2 && len(ins) > 0 {
		cfg, err := loadVerifyConfig(t.config, t.dataDir, *pluginDir)
		if err != nil {
			return err
		}
		if cfg.Tier2Enabled() {
			logger := hclog.New(&hclog.LoggerOptions{Name: "aof2", Level: hclog.Warn, Output: e.stderr})
			if sess, err = openTier2(ctx, cfg, logger); err != nil {
				return err
			}
			defer sess.close()
			_, err = os.Stat(filepath.Join(cfg.DataDir, node.ReplicaMarker))
			sess.checker.replica = err == nil
		} else {
			notChecked = "tier 2 not checked: no tier-2 plugin is configured (tier2.enabled = false or tier2.plugin = \"\")"
		}
	}
	type result struct {
		Stream   uint64             `json:"stream_id"`
		Findings []manifest.Finding `json:"findings"`
		Tier2    tier2Report        `json:"tier2"`
	}
	var all []result
	total := 0
	for _, in := range ins {
		r := result{Stream: in.id, Tier2: tier2Report{Note: notChecked}}
		opts := manifest.VerifyOptions{LogOnly: *logOnly}
		if sess != nil {
			opts.Objects = func(ctx context.Context, x *manifest.Inspection) ([]manifest.Finding, error) {
				f, rep, err := sess.checker.check(ctx, types.StreamID(in.id), x)
				r.Tier2 = rep
				return f, err
			}
		}
		var segs []manifest.SegmentState
		prev := opts.Objects
		opts.Objects = func(ctx context.Context, x *manifest.Inspection) ([]manifest.Finding, error) {
			segs = x.Segments
			if prev == nil {
				return nil, nil
			}
			return prev(ctx, x)
		}
		f, err := in.Verify(ctx, opts)
		if err != nil {
			return fmt.Errorf("stream %d: %w", in.id, err)
		}
		f = append(f, segmentFindings(in.path, in.id, segs)...)
		r.Findings = f
		all = append(all, r)
		for _, x := range f {
			if x.Severity != manifest.SeverityInfo { // info is reported, not a failure
				total++
			}
		}
	}
	if *asJSON {
		if err := writeJSON(e, all); err != nil {
			return err
		}
	} else {
		if sess != nil {
			fmt.Fprintf(e.stdout, "tier 2: %s\n", sess.desc)
		} else if len(ins) > 0 {
			fmt.Fprintf(e.stdout, "note: %s\n", notChecked)
		}
		for _, r := range all {
			if len(r.Findings) == 0 {
				fmt.Fprintf(e.stdout, "stream %d: ok (%s)\n", r.Stream, r.Tier2.summary())
			}
			for _, f := range r.Findings {
				where := f.File
				if f.Key != "" {
					where = f.Key
				}
				fmt.Fprintf(e.stdout, "stream %d: %s %s %s: %s\n", r.Stream, f.Severity, f.Code, where, f.Message)
			}
		}
	}
	if total > 0 {
		fmt.Fprintf(e.stderr, "aof2-host manifest verify: %d findings\n", total)
		return findingsError{total}
	}
	return nil
}

// streamInspector is the manifest inspector of one stream.
type streamInspector struct {
	id   uint64
	path string // the stream's directory
	*manifest.Inspector
}

// streamInspectors resolves the target's data directory and returns the
// inspectors of one stream (stream set) or of every stream in it.
// offlineOnly refuses an -addr given to a command that reads the data
// directory itself (the manifest commands): it would otherwise read
// ./data beside the operator and report on it as if on the host.
func offlineOnly(fs *flag.FlagSet) error {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "addr" })
	if set {
		return usagef("%s reads a data directory (-data-dir or -config) on the host's machine; it does not work through -addr", fs.Name())
	}
	return nil
}

func streamInspectors(t *target, stream string) ([]streamInspector, error) {
	var ids []uint64
	if stream != "" {
		id, err := parseStream(stream)
		if err != nil {
			return nil, err
		}
		ids = []uint64{id}
	}
	dataDir, err := t.localDir()
	if err != nil {
		return nil, err
	}
	if stream == "" {
		if ids, err = allStreams(dataDir); err != nil {
			return nil, err
		}
	}
	out := make([]streamInspector, 0, len(ids))
	for _, id := range ids {
		dir, err := streamDir(dataDir, id)
		if err != nil {
			return nil, err
		}
		out = append(out, streamInspector{id, dir, manifest.NewInspector(vfs.OS, dir, types.StreamID(id))})
	}
	return out, nil
}

func runManifestParity(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	stream := e.flags.String("stream", "", "check only this stream (default: every stream)")
	asJSON := e.flags.Bool("json", false, "print the reports as JSON")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	if err := offlineOnly(e.flags); err != nil {
		return err
	}
	ins, err := streamInspectors(t, *stream)
	if err != nil {
		return err
	}
	var reports []manifest.ParityReport
	bad := 0
	for _, in := range ins {
		r, err := in.Parity(ctx)
		if err != nil {
			return fmt.Errorf("stream %d: %w", in.id, err)
		}
		reports = append(reports, r)
		if !r.OK() {
			bad++
		}
	}
	if *asJSON {
		if err := writeJSON(e, reports); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			switch {
			case r.OK() && r.Behind():
				fmt.Fprintf(e.stdout, "stream %d: JSON view and log agree at log record %d; the view is behind the log's %d (rewritten at the next open)\n",
					r.StreamID, r.ComparedAt, r.LogRecords)
			case r.OK():
				fmt.Fprintf(e.stdout, "stream %d: JSON view and log agree\n", r.StreamID)
			case !r.JSONPresent:
				fmt.Fprintf(e.stdout, "stream %d: no JSON view (log-only deployment?): %d segments only in the log\n", r.StreamID, r.Segments)
			default:
				fmt.Fprintf(e.stdout, "stream %d: %d segments diverge %s\n", r.StreamID, r.Segments, r.JSONError)
				for _, d := range r.Divergences {
					fmt.Fprintf(e.stdout, "  segment %d %s: json=%s log=%s\n", d.SegmentID, d.Field, d.JSON, d.Log)
				}
			}
		}
	}
	if bad > 0 {
		return findingsError{bad}
	}
	return nil
}
