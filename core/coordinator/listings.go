package coordinator

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// WarmArtifacts lists the artifacts in the stream's
// warm directory whose seek table, header and footer read back (they are
// fully verified again whenever they are hydrated).
func (c *Coordinator) WarmArtifacts(ctx context.Context, stream types.StreamID) ([]manifest.WarmArtifact, error) {
	dir := tier1.WarmDir(c.cfg.DataDir, stream)
	names, err := c.cfg.FS.List(dir)
	if vfs.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []manifest.WarmArtifact
	for _, n := range names {
		seg, ok := tier1.ParseArtifactName(n)
		if !ok {
			continue
		}
		f, err := c.cfg.FS.Open(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		size, err := f.Size()
		if err == nil {
			var a *tier1.Artifact
			if a, err = tier1.OpenReaderAt(f, size, n); err == nil {
				if _, err = a.Footer(); err == nil {
					out = append(out, manifest.WarmArtifact{SegmentID: seg, CompressedBytes: uint64(size)})
				}
				_ = a.Close()
			}
		}
		_ = f.Close()
		if err != nil {
			c.log.Warn("warm artifact does not read back; left out of the manifest rebuild", "stream_id", uint64(stream), "file", n, "error", err)
		}
	}
	return out, nil
}

// Tier2Segments lists the stream's tier-2 segment objects
// (objects whose metadata parses; unknown keys are left out).
func (c *Coordinator) Tier2Segments(ctx context.Context, stream types.StreamID) ([]manifest.Tier2Segment, error) {
	if c.remote == nil {
		return nil, nil
	}
	l, err := c.remote.ListStream(ctx, stream)
	if err != nil {
		return nil, err
	}
	out := make([]manifest.Tier2Segment, 0, len(l.Segments))
	for _, o := range l.Segments {
		if o.MetaErr == nil {
			out = append(out, manifest.Tier2Segment{SegmentID: types.SegmentID(o.Ref.ID), Key: o.Info.Key, ETag: o.Info.ETag})
		}
	}
	return out, nil
}
