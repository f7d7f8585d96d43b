package dump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// segFacts is what the manifest does not record about a segment and the
// offline dump reads from its local copies: its first record's ordinal, its
// record count and its record bytes.
type segFacts struct {
	baseRecord, records, bytes uint64
}

// coldSuffix names a cold stub: the header and footer of an evicted
// segment (docs/formats.md#cold-stub).
const coldSuffix = ".cold"

// stubSize is a cold stub's length: header, footer, CRC-64/NVME of both.
const stubSize = segment.HeaderSize + segment.FooterSize + 8

// localFacts reads segFacts for the segments of one stream from what is
// on disk, without changing anything: the tier-0 file (header and footer;
// an unsealed segment's intact records are counted), else the cold stub
// left by its eviction. Unreadable copies are reported in problems and
// skipped.
func localFacts(fsys vfs.FS, streamDir string, stream types.StreamID) (map[types.SegmentID]segFacts, []string) {
	out := map[types.SegmentID]segFacts{}
	segDir := filepath.Join(streamDir, "segments")
	names, err := fsys.List(segDir)
	if err != nil {
		if vfs.IsNotExist(err) {
			return out, nil
		}
		return out, []string{fmt.Sprintf("stream %d: list segments: %v", stream, err)}
	}
	var problems []string
	stubs := map[types.SegmentID]string{}
	for _, n := range names {
		if base, ok := strings.CutSuffix(n, coldSuffix); ok {
			if name, ok := segment.ParseFileName(base); ok {
				stubs[name.SegmentID] = filepath.Join(segDir, n)
			}
			continue
		}
		name, ok := segment.ParseFileName(n)
		if !ok {
			continue
		}
		f, err := fileFacts(fsys, filepath.Join(segDir, n), name, stream)
		if err != nil {
			problems = append(problems, fmt.Sprintf("stream %d segment %d: %v", stream, name.SegmentID, err))
			continue
		}
		out[name.SegmentID] = f
	}
	for id, path := range stubs {
		if _, ok := out[id]; ok {
			continue // the file wins over a stale stub, as in recovery
		}
		f, err := stubFacts(fsys, path, id, stream)
		if err != nil {
			problems = append(problems, fmt.Sprintf("stream %d segment %d: %v", stream, id, err))
			continue
		}
		out[id] = f
	}
	return out, problems
}

// fileFacts reads a tier-0 segment file: header and footer when sealed,
// else the records intact from the start (what recovery would keep).
func fileFacts(fsys vfs.FS, path string, name segment.Name, stream types.StreamID) (segFacts, error) {
	info, err := segment.Inspect(fsys, path, name, stream)
	if err != nil {
		return segFacts{}, err
	}
	if info.Unwritten {
		return segFacts{}, nil
	}
	if info.Footer != nil {
		return segFacts{baseRecord: info.Header.BaseRecord, records: info.Footer.RecordCount,
			bytes: info.Footer.DurableBytes - segment.HeaderSize}, nil
	}
	region, err := segment.MapReadOnly(fsys, path)
	if err != nil {
		return segFacts{}, err
	}
	defer region.Close()
	b := region.Bytes()
	limit := segment.DataEnd(int64(len(b)))
	f := segFacts{baseRecord: info.Header.BaseRecord}
	off := int64(segment.HeaderSize)
	for {
		rec, err := segment.ReadRecord(b, path, off, limit)
		if err != nil {
			break // the end marker, the end of the data area, or damage: recovery's tail
		}
		f.records++
		off = rec.Next()
	}
	f.bytes = uint64(off - segment.HeaderSize)
	return f, nil
}

// stubFacts reads a cold stub (docs/formats.md#cold-stub).
func stubFacts(fsys vfs.FS, path string, id types.SegmentID, stream types.StreamID) (segFacts, error) {
	b, err := vfs.ReadFile(fsys, path)
	if err != nil {
		return segFacts{}, err
	}
	if len(b) != stubSize {
		return segFacts{}, fmt.Errorf("cold stub %s: %d bytes, want %d", filepath.Base(path), len(b), stubSize)
	}
	if got, want := checksum.Sum64(b[:stubSize-8]), binary.LittleEndian.Uint64(b[stubSize-8:]); got != want {
		return segFacts{}, fmt.Errorf("cold stub %s: checksum %#x, stored %#x", filepath.Base(path), got, want)
	}
	h, err := segment.DecodeHeader(b)
	if err != nil {
		return segFacts{}, fmt.Errorf("cold stub %s: %w", filepath.Base(path), err)
	}
	// The stub does not record the segment's capacity: bound the footer by
	// the largest there is.
	f, err := segment.DecodeFooter(b[segment.HeaderSize:], segment.MaxCapacity)
	if err != nil {
		return segFacts{}, fmt.Errorf("cold stub %s: %w", filepath.Base(path), err)
	}
	if h.SegmentID != id || f.SegmentID != id || h.StreamID != stream {
		return segFacts{}, fmt.Errorf("cold stub %s: names segment %d of stream %d", filepath.Base(path), h.SegmentID, h.StreamID)
	}
	return segFacts{baseRecord: h.BaseRecord, records: f.RecordCount, bytes: f.DurableBytes - segment.HeaderSize}, nil
}

// warmFacts reads the header and footer of a segment's warm artifact, for
// a segment with neither a tier-0 file nor a stub.
func warmFacts(fsys vfs.FS, dataDir string, k types.SegmentKey) (segFacts, error) {
	path := tier1.ArtifactPath(dataDir, k)
	file, err := fsys.Open(path)
	if err != nil {
		return segFacts{}, err
	}
	defer file.Close()
	size, err := file.Size()
	if err != nil {
		return segFacts{}, err
	}
	a, err := tier1.OpenReaderAt(file, size, path)
	if err != nil {
		return segFacts{}, err
	}
	defer a.Close()
	h, herr := a.Header()
	f, ferr := a.Footer()
	if err := errors.Join(herr, ferr); err != nil {
		return segFacts{}, err
	}
	return segFacts{baseRecord: h.BaseRecord, records: f.RecordCount, bytes: f.DurableBytes - segment.HeaderSize}, nil
}
