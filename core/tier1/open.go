package tier1

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/logthrottle"
)

// Problem is an artifact file Open could not admit. The file is left where
// it is: the caller decides (Adopt it once it knows what it is, Remove it,
// or re-fetch the segment from tier 2).
type Problem struct {
	Key  types.SegmentKey // zero when the file name is not an artifact name
	Path string
	Err  error
}

// Report is what Open found in the warm directories.
type Report struct {
	// Verified artifacts were admitted into the cache.
	Verified []types.SegmentKey
	// Mismatched artifacts were expected but failed verification
	// (corrupt, or not the segment the caller expects).
	Mismatched []Problem
	// Unknown files are artifacts (or foreign files) no expectation names.
	Unknown []Problem
	// Missing lists expected artifacts with no file.
	Missing []types.SegmentKey
	// TempRemoved lists the leftover temporary files deleted.
	TempRemoved []string
}

// Open starts the warm cache: it scans every <DataDir>/streams/*/warm
// directory, deletes leftover temporary files (a compression interrupted
// by a crash), verifies each artifact against cfg.Expected (VerifyQuick by
// default) and admits those that pass. Nothing else is deleted: mismatched
// and unknown files and missing artifacts are reported. Then it starts the
// worker pools.
func Open(cfg Config) (*Cache, *Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, nil, err
	}
	c := &Cache{cfg: cfg, fs: cfg.FS, log: cfg.Logger.Named("tier1"), m: m}
	c.logs = logthrottle.New(c.log, logthrottle.Config{Now: cfg.Now})
	c.mu.entries = map[types.SegmentKey]*entry{}
	c.mu.removing = map[types.SegmentKey]struct{}{}
	c.mu.lru = list.New()
	c.mu.compress = map[types.SegmentKey]struct{}{}
	c.mu.hydrating = map[string]struct{}{}
	rep, err := c.scan(context.Background())
	if err != nil {
		m.unregister()
		return nil, nil, err
	}
	c.compress = newPool(cfg.CompressWorkers, cfg.QueueDepth, m.queueDepth.WithLabelValues("compress"))
	c.hydrate = newPool(cfg.HydrateWorkers, cfg.QueueDepth, m.queueDepth.WithLabelValues("hydrate"))
	return c, rep, nil
}

type found struct {
	key  types.SegmentKey
	path string
	mod  time.Time
}

func (c *Cache) scan(ctx context.Context) (*Report, error) {
	rep := &Report{}
	expected := make(map[types.SegmentKey]Expected, len(c.cfg.Expected))
	for _, e := range c.cfg.Expected {
		expected[e.Key] = e
	}
	streamsDir := filepath.Join(c.cfg.DataDir, "streams")
	streams, err := c.fs.List(streamsDir)
	if err != nil && !vfs.IsNotExist(err) {
		return nil, fmt.Errorf("tier1: list %s: %w", streamsDir, err)
	}
	var files []found
	for _, s := range streams {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue // not a stream directory
		}
		stream := types.StreamID(id)
		dir := WarmDir(c.cfg.DataDir, stream)
		names, err := c.fs.List(dir)
		if vfs.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tier1: list %s: %w", dir, err)
		}
		removed := false
		for _, n := range names {
			path := filepath.Join(dir, n)
			if strings.HasSuffix(n, TempSuffix) {
				if err := c.fs.Remove(path); err != nil && !vfs.IsNotExist(err) {
					return nil, fmt.Errorf("tier1: remove leftover %s: %w", path, err)
				}
				rep.TempRemoved = append(rep.TempRemoved, path)
				removed = true
				continue
			}
			seg, ok := ParseArtifactName(n)
			if !ok {
				fi, err := c.fs.Stat(path)
				if err == nil && fi.IsDir() {
					continue
				}
				rep.Unknown = append(rep.Unknown, Problem{Path: path, Err: errors.New("not an artifact name")})
				continue
			}
			var mod time.Time
			if fi, err := c.fs.Stat(path); err == nil {
				mod = fi.ModTime()
			}
			files = append(files, found{key: types.SegmentKey{Stream: stream, Segment: seg}, path: path, mod: mod})
		}
		if removed {
			if err := c.fs.SyncDir(dir); err != nil {
				return nil, fmt.Errorf("tier1: sync %s: %w", dir, err)
			}
		}
	}
	// Oldest segments first, so they end up least recently used.
	slices.SortFunc(files, func(a, b found) int {
		return cmp.Or(cmp.Compare(a.key.Stream, b.key.Stream), cmp.Compare(a.key.Segment, b.key.Segment))
	})
	seen := map[types.SegmentKey]bool{}
	for _, f := range files {
		seen[f.key] = true
		exp, ok := expected[f.key]
		if !ok {
			p := Problem{Key: f.key, Path: f.path, Err: errors.New("no expectation names this segment")}
			rep.Unknown = append(rep.Unknown, p)
			if !c.cfg.AdoptAfterOpen {
				c.ReportUnknown(p)
			}
			continue
		}
		if err := c.adopt(ctx, exp, f.mod); err != nil {
			rep.Mismatched = append(rep.Mismatched, Problem{Key: f.key, Path: f.path, Err: err})
			c.m.verifyProblems.WithLabelValues("mismatch").Inc()
			c.log.Error("tier1_verify_mismatch", "stream_id", f.key.Stream, "segment_id", f.key.Segment, "path", f.path, "error", err)
			continue
		}
		rep.Verified = append(rep.Verified, f.key)
	}
	for _, e := range c.cfg.Expected {
		if !seen[e.Key] {
			rep.Missing = append(rep.Missing, e.Key)
			c.m.verifyProblems.WithLabelValues("missing").Inc()
			c.log.Warn("tier1_missing_artifact", "stream_id", e.Key.Stream, "segment_id", e.Key.Segment)
		}
	}
	return rep, nil
}

// ReportUnknown logs (tier1_unknown_artifact) and counts an artifact that
// no expectation names: Open does it itself unless AdoptAfterOpen is set.
func (c *Cache) ReportUnknown(p Problem) {
	c.m.verifyProblems.WithLabelValues("unknown").Inc()
	c.log.Warn("tier1_unknown_artifact", "stream_id", p.Key.Stream, "segment_id", p.Key.Segment, "path", p.Path)
}

// Adopt verifies the artifact file of exp.Key (one Open reported as unknown,
// or one placed by the caller) against exp and admits it. It uses the
// configured VerifyMode; nothing is deleted on failure.
func (c *Cache) Adopt(ctx context.Context, exp Expected) error {
	c.mu.Lock()
	closed := c.mu.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return c.adopt(ctx, exp, time.Time{})
}

func (c *Cache) adopt(ctx context.Context, exp Expected, mod time.Time) error {
	path := c.Path(exp.Key)
	f, err := c.fs.Open(path)
	if err != nil {
		return fmt.Errorf("tier1: open %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("tier1: size of %s: %w", path, err)
	}
	a, err := OpenReaderAt(f, size, path)
	if err != nil {
		return err
	}
	defer a.Close()
	if c.cfg.Verify == VerifyFull {
		err = verifyAll(ctx, a, exp)
	} else {
		_, _, err = checkIdentity(a, exp)
	}
	if err != nil {
		return err
	}
	foot, err := a.Footer()
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	if mod.IsZero() || mod.After(now) {
		mod = now
	}
	e := &entry{key: exp.Key, uploaded: exp.Uploaded, admitted: mod, lastUse: now, info: CompressResult{
		Key: exp.Key, Path: path, Capacity: a.Size(), DurableBytes: foot.DurableBytes, RecordCount: foot.RecordCount,
		SegmentCRC: foot.SegmentCRC, CompressedBytes: size, Frames: a.Frames(),
	}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return ErrClosed
	}
	if c.isRemovingLocked(exp.Key) {
		return fmt.Errorf("tier1: adopt %s: its file is being removed: %w", exp.Key, ErrInProgress)
	}
	if _, ok := c.mu.entries[exp.Key]; !ok { // an admitted entry keeps its pins
		c.admitLocked(e)
	}
	return nil
}
