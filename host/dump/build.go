package dump

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Live builds an online dump from an open store and (optionally) its
// coordinator.
func Live(st *core.Store, c *coordinator.Coordinator) *Dump {
	d := &Dump{Schema: Schema, Taken: time.Now().UTC(), Source: Online, DataDir: st.Dir()}
	broken := st.Broken()
	ids := st.Streams()
	for id, err := range broken {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
		d.Problems = append(d.Problems, fmt.Sprintf("stream %d is broken: %v", id, err))
	}
	slices.Sort(ids)
	for _, id := range ids {
		s, err := st.Lookup(id)
		if err != nil {
			d.Streams = append(d.Streams, Stream{ID: uint64(id), Error: err.Error()})
			continue
		}
		d.Streams = append(d.Streams, liveStream(s))
	}
	d.fillTiers()
	if c != nil {
		snap := c.Snapshot()
		d.Tiers[0].MaxBytes = snap.Tier0.MaxBytes
		d.Tiers[1].MaxBytes = snap.Tier1.MaxBytes
		d.Queues = snap.Queued
		d.Queues["tier0_activation"] = snap.Tier0.QueueDepth
		d.Queues["tier1_compress"] = snap.Tier1.CompressQueue
		d.Queues["tier1_hydrate"] = snap.Tier1.HydrateQueue
		d.Hydration = &Hydration{InFlight: snap.Hydrating, P50: snap.HydrationP50, P90: snap.HydrationP90, P99: snap.HydrationP99}
		if snap.Tier2 != nil {
			d.Tier2 = tier2Health(*snap.Tier2)
		}
	}
	d.flagRecovery()
	return d
}

func liveStream(s *core.Stream) Stream {
	in := s.Info()
	out := Stream{ID: uint64(s.ID()), Records: in.Records, DurableRecords: in.DurableRecords}
	if in.Failed != nil {
		out.Error = in.Failed.Error()
	}
	tl := s.TierLog()
	for _, g := range s.SegmentList() {
		row := Segment{Stream: uint64(s.ID()), ID: uint64(g.ID), BaseRecord: g.BaseRecord, Tier0: g.Resident,
			Residency: manifest.ResidentInTier0.String()}
		if g.Footer != nil {
			row.Sealed = true
			row.Records = g.Footer.RecordCount
			row.Bytes = g.Footer.DurableBytes - segment.HeaderSize
		} else {
			row.Records = in.Records - g.BaseRecord
			row.Bytes = in.Bytes - g.BaseOffset
		}
		if tl != nil {
			if ms, ok := tl.Segment(g.ID); ok {
				withManifest(&row, ms)
			}
		}
		out.Segments = append(out.Segments, row)
	}
	return out
}

func withManifest(row *Segment, ms manifest.SegmentState) {
	row.Residency = ms.Residency.String()
	row.Tier1 = ms.Tier1.State == manifest.Tier1Compressed
	row.Compressed = ms.Tier1.CompressedBytes
	row.Tier2 = ms.Tier2.Key != ""
	row.Tier2Key = ms.Tier2.Key
}

// FromDataDir builds an offline dump from the manifests under dataDir (fsys
// nil: the OS file system), reading only: run it while no host has the
// directory open for an exact picture (a running host's manifests are read
// as of their last commit). Each segment's first ordinal and record count,
// which the manifest does not record, come from its local copies: the
// tier-0 file's header and footer (an unsealed segment's intact records
// are counted), else its cold stub, else its warm artifact; a segment with
// none of them (only in tier 2) shows zero.
func FromDataDir(ctx context.Context, fsys vfs.FS, dataDir string) (*Dump, error) {
	if fsys == nil {
		fsys = vfs.OS
	}
	d := &Dump{Schema: Schema, Taken: time.Now().UTC(), Source: Offline, DataDir: dataDir}
	root := filepath.Join(dataDir, "streams")
	names, err := fsys.List(root)
	if err != nil {
		return nil, fmt.Errorf("dump %s: %w", dataDir, err)
	}
	var ids []uint64
	for _, n := range names {
		if id, err := strconv.ParseUint(n, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		in, err := manifest.NewInspector(fsys, filepath.Join(root, strconv.FormatUint(id, 10)), types.StreamID(id)).Inspect(ctx, manifest.InspectOptions{})
		if err != nil {
			d.Streams = append(d.Streams, Stream{ID: id, Error: err.Error()})
			d.Problems = append(d.Problems, fmt.Sprintf("stream %d: manifest unreadable: %v", id, err))
			continue
		}
		s := Stream{ID: id}
		dir := filepath.Join(root, strconv.FormatUint(id, 10))
		facts, problems := localFacts(fsys, dir, types.StreamID(id))
		d.Problems = append(d.Problems, problems...)
		for _, ms := range in.Segments {
			row := Segment{Stream: id, ID: uint64(ms.SegmentID), Sealed: ms.Sealed, Tier0: ms.Tier0}
			if ms.Sealed && ms.DurableBytes >= segment.HeaderSize {
				row.Bytes = ms.DurableBytes - segment.HeaderSize
			}
			f, ok := facts[ms.SegmentID]
			if !ok && ms.Tier1.State == manifest.Tier1Compressed {
				f, err = warmFacts(fsys, dataDir, types.SegmentKey{Stream: types.StreamID(id), Segment: ms.SegmentID})
				ok = err == nil
			}
			if ok {
				row.BaseRecord, row.Records = f.baseRecord, f.records
				if !ms.Sealed {
					row.Bytes = f.bytes
				}
			}
			withManifest(&row, ms)
			s.Segments = append(s.Segments, row)
			s.Records = max(s.Records, row.BaseRecord+row.Records)
		}
		if in.Replay.CorruptionEvents > 0 {
			d.Problems = append(d.Problems, fmt.Sprintf("stream %d: %d corrupt manifest chunks or snapshots (run manifest verify)", id, in.Replay.CorruptionEvents))
		}
		d.Streams = append(d.Streams, s)
	}
	d.fillTiers()
	d.flagRecovery()
	return d, nil
}

func (d *Dump) flagRecovery() {
	for _, s := range d.Streams {
		for _, g := range s.Segments {
			if g.Residency == manifest.NeedsRecovery.String() {
				d.Problems = append(d.Problems, fmt.Sprintf("stream %d segment %d needs recovery: no verified copy is known", g.Stream, g.ID))
			}
		}
	}
}
