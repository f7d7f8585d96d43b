package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/logthrottle"
	"github.com/aof2/aof2/pluginapi"
)

// The scrubber's tier-2 side (scrub.go): checking an object by HEAD and,
// within the pass's budget, by a full GET; uploading a missing object
// again; replacing one that rotted at rest.

// tier2Check is what a pass learnt of a tier-2 object.
type tier2Check struct {
	state  copyState
	detail string // what is wrong, for a finding
	// crc is the CRC-64/NVME the object was uploaded with, if hasCRC.
	crc    uint64
	hasCRC bool
	// rotten: a bad object that is the one the manifest names (its etag),
	// its bytes changed at rest; etag is its etag.
	rotten bool
	etag   string
	// verified: a full GET checked the object this pass.
	verified bool
}

// scrubTier2 checks the tier-2 object by HEAD (stored checksum, metadata,
// etag) and, within the pass's budget, by a full GET verified against the
// segment.
func (c *Coordinator) scrubTier2(ctx context.Context, p *scrubPass, k types.SegmentKey, ms manifest.SegmentState, info core.SegmentInfo, exp tier1.Expected) tier2Check {
	key := ms.Tier2.Key
	p.sum.Tier2Checked++
	oi, err := c.remote.Stat(ctx, key)
	switch {
	case errors.Is(err, pluginapi.ErrNotFound):
		return tier2Check{state: copyMissing, detail: fmt.Sprintf("tier-2 object %s is missing", key)}
	case err != nil:
		c.scrubCannotCheck(k, err)
		return tier2Check{state: copyUnknown}
	}
	md, err := tier2.ParseMetadata(oi.Metadata)
	var problem string
	// The object the manifest names, whose bytes changed at rest: the
	// one kind of bad object a verified local copy replaces.
	ours := ms.Tier2.ETag != "" && oi.ETag == ms.Tier2.ETag
	rotten := false
	switch {
	case err != nil:
		problem = err.Error()
	case md.Ref.Kind != tier2.KindSegment || md.Ref.Stream != k.Stream || types.SegmentID(md.Ref.ID) != k.Segment:
		problem = fmt.Sprintf("its metadata names %s stream %d id %d", md.Ref.Kind, md.Ref.Stream, md.Ref.ID)
	case !md.HasCRC64 && !oi.HasCRC64:
		problem = "it carries no stored checksum"
	case md.HasCRC64 && oi.HasCRC64 && md.CRC64 != oi.CRC64:
		problem, rotten = fmt.Sprintf("the backend's checksum %016x differs from the uploaded %016x", oi.CRC64, md.CRC64), ours
	case md.Size != 0 && md.Size != oi.Size:
		problem, rotten = fmt.Sprintf("it is %d bytes, %d were uploaded", oi.Size, md.Size), ours
	case info.Footer != nil && md.RecordCount != info.Footer.RecordCount:
		problem = fmt.Sprintf("it records %d records, the segment holds %d", md.RecordCount, info.Footer.RecordCount)
	case ms.Tier2.ETag != "" && oi.ETag != "" && oi.ETag != ms.Tier2.ETag:
		problem = fmt.Sprintf("its etag is %q, the manifest records %q (rewritten)", oi.ETag, ms.Tier2.ETag)
	}
	if problem != "" {
		return tier2Check{state: copyBad, detail: fmt.Sprintf("tier-2 object %s: %s", key, problem), rotten: rotten, etag: oi.ETag}
	}
	c.logs.Succeed(scrubCannotCheck, "")
	good := tier2Check{state: copyGood, crc: md.CRC64, hasCRC: md.HasCRC64}
	if !good.hasCRC {
		good.crc, good.hasCRC = oi.CRC64, oi.HasCRC64
	}
	if p.getsLeft < int64(oi.Size) {
		return good
	}
	p.getsLeft -= int64(oi.Size)
	if err := p.pace.wait(ctx, int64(oi.Size)); err != nil {
		return tier2Check{state: copyUnknown}
	}
	p.sum.Tier2FullGets++
	err = c.fullGet(ctx, k, key, exp)
	switch {
	case err == nil:
		p.sum.BytesVerified[ScrubTier2] += int64(oi.Size)
		c.m.scrubBytes.WithLabelValues(ScrubTier2).Add(float64(oi.Size))
		good.verified = true
		return good
	case ctx.Err() != nil:
		return tier2Check{state: copyUnknown}
	case errors.Is(err, pluginapi.ErrNotFound):
		return tier2Check{state: copyMissing, detail: fmt.Sprintf("tier-2 object %s is missing", key)}
	case errors.Is(err, tier1.ErrChecksumMismatch):
		// Bytes that match their own checksum but are not this segment:
		// another object, not rot.
		return tier2Check{state: copyBad, detail: fmt.Sprintf("tier-2 object %s: %v", key, err)}
	case errors.Is(err, types.ErrCorrupt), errors.Is(err, tier2.ErrChecksum):
		return tier2Check{state: copyBad, detail: fmt.Sprintf("tier-2 object %s: %v", key, err), rotten: ours, etag: oi.ETag}
	}
	c.scrubCannotCheck(k, err)
	return tier2Check{state: copyUnknown}
}

// fullGet downloads the object (verified against its stored checksum by
// tier 2) and verifies it as an artifact of the segment; nothing is kept.
func (c *Coordinator) fullGet(ctx context.Context, k types.SegmentKey, key string, exp tier1.Expected) error {
	var r io.ReaderAt
	var size int64
	if vfs.OnOS(c.cfg.FS) {
		dir := tier1.WarmDir(c.cfg.DataDir, k.Stream)
		if err := vfs.MkdirAllSync(c.cfg.FS, dir); err != nil {
			return err
		}
		tmp := filepath.Join(dir, fmt.Sprintf("scrub-%d-%d%s", k.Segment, c.fetchSeq.Add(1), tier1.TempSuffix))
		defer os.Remove(tmp)
		d, err := c.remote.DownloadFile(ctx, key, tmp, tier2.Expect{})
		if err != nil {
			return err
		}
		f, err := os.Open(tmp)
		if err != nil {
			return err
		}
		defer f.Close()
		r, size = f, int64(d.Size)
	} else {
		data, _, err := c.remote.Fetch(ctx, key, tier2.Expect{})
		if err != nil {
			return err
		}
		r, size = bytesReaderAt(data), int64(len(data))
	}
	a, err := tier1.OpenReaderAt(r, size, key)
	if err != nil {
		return err
	}
	defer a.Close()
	return tier1.VerifyArtifact(ctx, a, exp)
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// rebuildRemote uploads a missing tier-2 object again from a verified local
// copy (the reconciliation's re-upload), and replaces one whose bytes
// rotted at rest — only while it is still that object (a Put conditional
// on its etag). An object that is not the one the manifest names (another
// etag, another segment's metadata) is reported, never overwritten.
func (c *Coordinator) rebuildRemote(ctx context.Context, s *core.Stream, k types.SegmentKey, ms manifest.SegmentState, t2 tier2Check, localGood bool, t1 copyState) error {
	if err := c.mayMutate(ctx); err != nil {
		return fmt.Errorf("tier 2 is not written to: %w", err)
	}
	switch {
	case t2.state == copyBad && !t2.rotten:
		return fmt.Errorf("it is not the object the manifest names; tier 2 never overwrites another writer's object")
	case t2.state == copyBad && !localGood:
		return fmt.Errorf("no verified local copy to replace it from")
	case t2.state == copyBad && t1 == copyBad:
		return fmt.Errorf("the warm copy failed its check too; the next pass repairs it first")
	case t2.state == copyBad:
		return c.replaceRemote(ctx, s, k, t2.etag)
	}
	if !localGood {
		if err := s.TierLog().Record(ctx, manifest.UploadFailed{Header: hdr(k.Segment), Key: ms.Tier2.Key, Reason: manifest.ReasonObjectMissing}); err != nil {
			return fmt.Errorf("no verified local copy; flagging it failed: %w", err)
		}
		return fmt.Errorf("no verified local copy: the segment is flagged needs_recovery")
	}
	return c.reupload(ctx, s, k.Segment)
}

// replaceRemote overwrites the rotten tier-2 object of k (etag badETag)
// with the local artifact — compressed from the verified tier-0 file if
// the warm cache has none — and records the new etag. The segment's lock
// keeps eviction off the local copies meanwhile.
func (c *Coordinator) replaceRemote(ctx context.Context, s *core.Stream, k types.SegmentKey, badETag string) error {
	unlock := c.lockKey(k)
	defer unlock()
	info, ok := s.Segment(k.Segment)
	if !ok || info.Footer == nil || deleteQueued(s.TierLog(), k.Segment) {
		return fmt.Errorf("segment %d is gone: %w", k.Segment, types.ErrNotFound)
	}
	if !c.warm.Contains(k) {
		if !info.Resident {
			return fmt.Errorf("no local copy left")
		}
		res, err := c.warm.Compress(ctx, tier1.Source{Stream: s.ID(), Path: info.Path, Segment: k.Segment})
		if err != nil {
			return fmt.Errorf("compress from tier 0: %w", err)
		}
		if err := s.TierLog().Record(ctx, manifest.CompressionDone{Header: hdr(k.Segment), CompressedBytes: uint64(res.CompressedBytes)}); err != nil {
			return err
		}
	}
	tl := s.TierLog()
	key := c.remote.Layout().SegmentObjectKey(k)
	if err := tl.Note(manifest.UploadStarted{Header: hdr(k.Segment), Key: key}); err != nil {
		return err
	}
	meta := tier2.SegmentInfo{RecordCount: info.Footer.RecordCount, BaseRecord: info.Footer.BaseRecord}
	var up tier2.Uploaded
	var err error
	if vfs.OnOS(c.cfg.FS) {
		up, err = c.remote.ReplaceSegment(ctx, k, c.warm.Path(k), nil, meta, badETag)
	} else {
		var data []byte
		if data, err = vfs.ReadFile(c.cfg.FS, c.warm.Path(k)); err == nil {
			up, err = c.remote.ReplaceSegment(ctx, k, "", data, meta, badETag)
		}
	}
	if err != nil {
		if rerr := tl.Record(ctx, manifest.UploadFailed{Header: hdr(k.Segment), Key: key, Reason: reason(err)}); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("replace: %w", err)
	}
	if err := c.recordUpload(ctx, s, k.Segment, up); err != nil { // in a cluster, through the log
		return err
	}
	_ = c.warm.MarkUploaded(k)
	return nil
}

const scrubCannotCheck = "scrub could not check a tier-2 object"

// scrubCannotCheck logs a tier-2 check that could not be made (tier 2
// unavailable): not a finding, rate-limited.
func (c *Coordinator) scrubCannotCheck(k types.SegmentKey, err error) {
	c.logs.Fail(logthrottle.Failure{Msg: scrubCannotCheck, Reason: tier2.Reason(err), Recovered: "scrub checks tier 2 again",
		Args: []any{"stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment), "error", err}})
}
