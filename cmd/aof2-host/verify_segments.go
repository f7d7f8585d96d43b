package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// segmentFindings checks the tier-0 segment files of the stream in dir
// against its manifest (docs/tiering.md#healing): every segment the
// manifest places in tier 0 has a readable file; a sealed one's footer and
// bytes match the manifest's durable_bytes and segment_crc64; the unsealed
// tail has no damage (a bad record before the durable mark's proof, or an
// intact record after a bad one). A copy that fails is an error when no
// other tier holds the segment, a warning when one does (the host heals it
// from there).
func segmentFindings(dir string, stream uint64, segs []manifest.SegmentState) []manifest.Finding {
	segDir := filepath.Join(dir, "segments")
	var out []manifest.Finding
	add := func(st manifest.SegmentState, file, code, format string, args ...any) {
		sev := manifest.SeverityError
		if st.Sealed && (st.Tier1.State == manifest.Tier1Compressed || st.Tier2.Key != "") {
			sev = manifest.SeverityWarning
			format += " (another tier holds the segment: the host replaces this copy from it)"
		}
		out = append(out, manifest.Finding{Severity: sev, Code: code, File: file, Message: fmt.Sprintf(format, args...)})
	}
	names, err := vfs.OS.List(segDir)
	if err != nil {
		if !vfs.IsNotExist(err) {
			out = append(out, manifest.Finding{Severity: manifest.SeverityError, Code: "segments_unreadable", File: segDir, Message: err.Error()})
		}
		return out
	}
	files := map[types.SegmentID]segment.Name{}
	paths := map[types.SegmentID]string{}
	lost := map[types.SegmentID]string{} // accepted losses (core/lost.go)
	for _, n := range names {
		if name, ok := segment.ParseFileName(n); ok {
			files[name.SegmentID], paths[name.SegmentID] = name, filepath.Join(segDir, n)
		} else if name, ok := segment.ParseFileName(strings.TrimSuffix(n, core.LostSuffix)); ok && strings.HasSuffix(n, core.LostSuffix) {
			lost[name.SegmentID] = filepath.Join(segDir, n)
		}
	}
	mark, _ := segment.ReadMark(vfs.OS, filepath.Join(segDir, segment.MarkFile))
	for _, st := range segs {
		if !st.Tier0 {
			continue
		}
		name, ok := files[st.SegmentID]
		path := paths[st.SegmentID]
		if stub, accepted := lost[st.SegmentID]; accepted && !ok {
			out = append(out, manifest.Finding{Severity: manifest.SeverityInfo, Code: "segment_lost", File: stub,
				Message: fmt.Sprintf("segment %d: its tier-0 file was unreadable with no other copy and its loss was accepted (docs/tiering.md#damage)", st.SegmentID)})
			continue
		}
		if !ok {
			add(st, segDir, "segment_missing", "segment %d: the manifest places it in tier 0 and its file is gone", st.SegmentID)
			continue
		}
		info, err := segment.Inspect(vfs.OS, path, name, types.StreamID(stream))
		switch {
		case err != nil:
			add(st, path, "segment_unreadable", "segment %d: %v", st.SegmentID, err)
			continue
		case info.Truncated:
			add(st, path, "segment_truncated", "segment %d: the file is %d bytes, shorter than any segment capacity", st.SegmentID, info.Capacity)
			continue
		}
		if !st.Sealed {
			out = append(out, tailFindings(path, info, mark)...)
			continue
		}
		if f := info.Footer; f == nil || f.DurableBytes != st.DurableBytes || f.SegmentCRC != uint64(st.SegmentCRC64) {
			add(st, path, "segment_footer", "segment %d: the footer disagrees with the manifest's sealed record (%d bytes, CRC %016x)",
				st.SegmentID, st.DurableBytes, uint64(st.SegmentCRC64))
			continue
		}
		if err := core.VerifySealedCopy(vfs.OS, path, st, nil); err != nil {
			add(st, path, "segment_checksum", "segment %d: its bytes fail the manifest's segment_crc64 %016x: %v", st.SegmentID, uint64(st.SegmentCRC64), err)
		}
	}
	return out
}

// tailFindings classifies the unsealed tail as recovery would.
func tailFindings(path string, info segment.Info, mark *segment.Mark) []manifest.Finding {
	b, err := vfs.ReadFile(vfs.OS, path)
	if err != nil {
		return []manifest.Finding{{Severity: manifest.SeverityError, Code: "segment_unreadable", File: path, Message: err.Error()}}
	}
	proven := int64(segment.HeaderSize)
	if mark != nil && mark.SegmentID == info.Name.SegmentID {
		proven = int64(mark.DurableBytes)
	}
	ts := segment.ScanTail(b)
	// A torn last write is no finding: recovery drops it, as it must.
	if v := segment.ClassifyTail(b, ts, proven); v.Kind == segment.TailDamaged {
		return []manifest.Finding{{Severity: manifest.SeverityError, Code: "segment_damaged", File: path,
			Message: fmt.Sprintf("segment %d (the tail) is damaged at offset %d: %s; aof2-host repair -accept-loss settles it (docs/tiering.md#damage)",
				info.Name.SegmentID, v.At, v.Reason)}}
	}
	return nil
}
