package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/types"
)

// errCopyIntact: a repair was asked for a tier-0 copy that matches the
// manifest's checksum; the damage a read saw is not in the file.
var errCopyIntact = errors.New("the tier-0 copy matches the manifest's segment_crc64")

// Repair replaces the tier-0 copy of sealed segment k, which a read found
// corrupt, with one rebuilt from the warm artifact or the tier-2 object
// (downloaded into the warm cache first), verified against the manifest's
// segment_crc64 — the reference, not the damaged file's footer
// (docs/tiering.md#healing). The old file is kept beside the new one.
func (c *Coordinator) Repair(ctx context.Context, k types.SegmentKey) error {
	return c.repair(ctx, k, "read")
}

// repair is Repair counted under reason ("read", "scrub").
func (c *Coordinator) repair(ctx context.Context, k types.SegmentKey, reason string) error {
	s, err := c.stream(k.Stream)
	if err != nil {
		return err
	}
	info, ok := s.Segment(k.Segment)
	ms, known := s.TierLog().Segment(k.Segment)
	if !ok || info.Footer == nil || !known || !ms.Sealed {
		return fmt.Errorf("repair segment %d: not a sealed segment: %w", k.Segment, types.ErrNotFound)
	}
	if uint64(ms.SegmentCRC64) != info.Footer.SegmentCRC || ms.DurableBytes != info.Footer.DurableBytes {
		return fmt.Errorf("repair segment %d: the catalog's footer disagrees with the manifest: %w", k.Segment, types.ErrCorrupt)
	}
	unlock := c.lockKey(k)
	defer unlock()
	if core.VerifySealedCopy(c.cfg.FS, info.Path, ms, nil) == nil {
		return fmt.Errorf("repair segment %d: %w", k.Segment, errCopyIntact)
	}
	inT2 := ms.Tier2.Key != ""
	exp := tier1.Expected{Key: k, SegmentCRC: uint64(ms.SegmentCRC64), Uploaded: inT2}
	if !c.warm.Contains(k) {
		if !inT2 {
			return fmt.Errorf("repair segment %d: no tier-1 or tier-2 copy: %w", k.Segment, types.ErrNotFound)
		}
		if err := c.fetchWithRetry(ctx, k, exp); err != nil {
			return fmt.Errorf("repair segment %d: %w", k.Segment, err)
		}
		if st, ok := c.warm.Stat(k); ok {
			if err := s.TierLog().Record(ctx, manifest.CompressionDone{Header: hdr(k.Segment), CompressedBytes: uint64(st.Bytes)}); err != nil {
				return err
			}
		}
	}
	// Written beside the damaged file under a temporary name recovery
	// deletes if a crash leaves it.
	dst := info.Path + ".repair" + tier1.TempSuffix
	if _, err := c.warm.Hydrate(ctx, tier1.HydrateRequest{Expected: exp, Dest: dst}); err != nil {
		_ = c.cfg.FS.Remove(dst)
		return fmt.Errorf("repair segment %d: %w", k.Segment, err)
	}
	if err := s.ReplaceSealedFile(k.Segment, dst, reason); err != nil {
		_ = c.cfg.FS.Remove(dst)
		return err
	}
	return nil
}
