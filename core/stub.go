package core

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// A cold stub replaces an evicted segment file in the segments directory:
// <segment file name>.cold holding the segment's header and footer and a
// CRC-64/NVME of both. Recovery rebuilds the catalog from stubs without
// the manifest or any network call, so ids, ordinals and offsets stay known
// even when every copy of a segment is gone (its reads then fail with a
// typed error instead of the stream refusing to open).
const (
	ColdSuffix = ".cold"
	stubSize   = segment.HeaderSize + segment.FooterSize + 8
)

func encodeStub(h segment.Header, f segment.Footer) []byte {
	b := make([]byte, stubSize)
	h.Encode(b)
	f.Encode(b[segment.HeaderSize:])
	binary.LittleEndian.PutUint64(b[stubSize-8:], checksum.Sum64(b[:stubSize-8]))
	return b
}

// decodeStub parses and verifies a stub; capacity bounds the footer.
func decodeStub(b []byte, capacity int64) (segment.Header, segment.Footer, error) {
	if len(b) != stubSize {
		return segment.Header{}, segment.Footer{}, fmt.Errorf("cold stub: %d bytes, want %d", len(b), stubSize)
	}
	if got, want := checksum.Sum64(b[:stubSize-8]), binary.LittleEndian.Uint64(b[stubSize-8:]); got != want {
		return segment.Header{}, segment.Footer{}, fmt.Errorf("cold stub: checksum %#x, stored %#x", got, want)
	}
	h, err := segment.DecodeHeader(b)
	if err != nil {
		return h, segment.Footer{}, fmt.Errorf("cold stub: %w", err)
	}
	f, err := segment.DecodeFooter(b[segment.HeaderSize:], capacity)
	if err != nil {
		return h, f, fmt.Errorf("cold stub: %w", err)
	}
	if f.SegmentID != h.SegmentID {
		return h, f, fmt.Errorf("cold stub: footer of segment %d under header of segment %d", f.SegmentID, h.SegmentID)
	}
	return h, f, nil
}

// readStub loads the stub at path for the segment its name describes.
func (s *Stream) readStub(path string) (*seg, error) {
	h, f, err := s.loadStub(path, ColdSuffix)
	if err != nil {
		return nil, err
	}
	return newColdSeg(strings.TrimSuffix(path, ColdSuffix), h, f, s.cfg.SegmentSize), nil
}

// loadStub reads and checks the stub at path, named <segment file><suffix>
// (a cold or a lost stub).
func (s *Stream) loadStub(path, suffix string) (segment.Header, segment.Footer, error) {
	name, ok := segment.ParseFileName(strings.TrimSuffix(baseName(path), suffix))
	if !ok {
		return segment.Header{}, segment.Footer{}, &types.CorruptError{Path: path, Reason: "stub name does not name a segment"}
	}
	b, err := vfs.ReadFile(s.cfg.FS, path)
	if err != nil {
		return segment.Header{}, segment.Footer{}, fmt.Errorf("stream %d: %w", s.id, err)
	}
	h, f, err := decodeStub(b, s.cfg.SegmentSize)
	if err != nil {
		return h, f, &types.CorruptError{Path: path, Reason: err.Error()}
	}
	if h.SegmentID != name.SegmentID || h.BaseOffset != name.BaseOffset || h.CreatedAt != name.CreatedAt || h.StreamID != s.id {
		return h, f, &types.CorruptError{Path: path, Reason: "stub disagrees with its name or stream"}
	}
	return h, f, nil
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// WriteStub writes, in segDir, the stub of a segment whose file is not
// there: a cold stub when another tier holds the segment, or with lost a
// lost stub recording that its loss is accepted (restore,
// docs/adr-restore.md). The stub is synced; the caller syncs segDir.
func WriteStub(fsys vfs.FS, segDir string, h segment.Header, f segment.Footer, lost bool) error {
	suffix := ColdSuffix
	if lost {
		f.Flags |= segment.FlagLossAccepted
		suffix = LostSuffix
	}
	path := filepath.Join(segDir, segment.FileName(h.SegmentID, h.BaseOffset, h.CreatedAt)+suffix)
	file, err := fsys.Create(path)
	if err != nil {
		return err
	}
	if _, err := file.WriteAt(encodeStub(h, f), 0); err != nil {
		_ = file.Close()
		return err
	}
	if err := file.Sync(); err != nil {
		_ = file.Close()
		return err
	}
	return file.Close()
}

// EncodeLostStub is the stub of a segment whose loss is accepted (its
// footer flagged FlagLossAccepted), as a restore writes it locally and
// records it in tier 2 for read replicas (tier2.Store.RecordLost).
func EncodeLostStub(h segment.Header, f segment.Footer) []byte {
	f.Flags |= segment.FlagLossAccepted
	return encodeStub(h, f)
}

// DecodeLostStub parses and verifies a lost stub of stream; capacity
// (the segment size) bounds its footer.
func DecodeLostStub(b []byte, stream StreamID, capacity int64) (segment.Header, segment.Footer, error) {
	h, f, err := decodeStub(b, capacity)
	switch {
	case err != nil:
		return h, f, err
	case h.StreamID != stream:
		return h, f, fmt.Errorf("lost stub: segment %d of stream %d, not %d", h.SegmentID, h.StreamID, stream)
	case f.Flags&segment.FlagLossAccepted == 0:
		return h, f, fmt.Errorf("lost stub: segment %d: no loss-accepted flag", h.SegmentID)
	}
	return h, f, nil
}

// SegmentRecords are the manifest records the engine writes when it opens
// and seals the segment h/f.
func SegmentRecords(h segment.Header, f segment.Footer) (manifest.SegmentOpened, manifest.SealSegment) {
	return openedRecord(h), sealRecord(h.BaseOffset, f)
}
