package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// viewWriter keeps the JSON view in step with the log (flag off). It is
// used with the commit token held, which guards every field.
//
// The view is rewritten whole after each commit that changes it, but it is
// not re-encoded whole: each segment's entry is kept encoded and only the
// entries a commit changed are encoded again. Encoding the whole view each
// time made a seal cost O(segments) of CPU (27 ms at 5,000 segments,
// BenchmarkSealAmong); what is left per commit is copying the bytes.
type viewWriter struct {
	enabled bool
	stream  types.StreamID
	entries map[types.SegmentID]*viewEntry
	ids     []types.SegmentID // entries' keys, ascending
	buf     []byte            // the view as last assembled
	// stale: the file may differ from entries (not written yet, or the
	// last write failed).
	stale bool
}

// viewEntry is one segment's entry of the view, and its encoding as it
// appears in the file (indented for its depth, no separator).
type viewEntry struct {
	seg ViewSegment
	enc []byte
}

// open checks parity at boot, publishes the divergence, and rewrites the
// view from the log when they differ: the log is authoritative.
//
// The file is first compared, byte for byte, with the view the log gives
// (which the writer assembles anyway): equal bytes are parity, without
// decoding the JSON and comparing it field by field, which cost ~20 ms per
// 1,000 segments at every open. Only a view that differs is decoded, for
// the report of what differs.
func (v *viewWriter) open(ctx context.Context, l *Log) error {
	if err := vfs.MkdirAllSync(l.fs, filepath.Join(l.dir, warmDirName)); err != nil {
		return fmt.Errorf("manifest: create warm dir: %w", err)
	}
	v.enabled, v.stream, v.entries = true, l.streamID, map[types.SegmentID]*viewEntry{}
	l.mu.Lock()
	v.refresh(l.mu.index)
	segments := len(l.mu.index.segments)
	l.mu.Unlock()
	v.buf = v.assemble(v.buf[:0])
	var r ParityReport
	if b, err := vfs.ReadFile(l.fs, ViewPath(l.dir)); err == nil && bytes.Equal(b, v.buf) {
		r = ParityReport{StreamID: l.streamID, JSONPresent: true}
		l.met.observeDivergence(0)
	} else if r, err = l.Parity(ctx); err != nil {
		return err
	}
	l.replay.Parity = &r
	if !r.OK() {
		l.log.Warn("manifest JSON view diverges from the log; rewriting it from the log",
			"stream_id", l.streamID, "segments", r.Segments, "json_present", r.JSONPresent, "json_error", r.JSONError)
	}
	// A log with no segments needs no view on disk: an absent view is at
	// parity with it, and the first commit that adds a segment writes one.
	// A new stream is thus created without writing and syncing a file.
	v.stale = !r.OK() || (!r.JSONPresent && segments > 0)
	v.update(l)
	return nil
}

// update writes the view if the committed state changed it. A failure is
// logged and retried by the next commit: the view is replaced atomically
// from scratch each time, never patched in place, and the log (already
// durable) stays authoritative, so a failed write costs only parity.
func (v *viewWriter) update(l *Log) {
	if !v.enabled {
		return
	}
	l.mu.Lock()
	changed := v.refresh(l.mu.index)
	l.mu.Unlock()
	if !changed && !v.stale {
		return
	}
	v.buf = v.assemble(v.buf[:0])
	if err := vfs.WriteFileAtomic(l.fs, ViewPath(l.dir), v.buf); err != nil {
		v.stale = true
		l.log.Error("manifest JSON view write failed; retrying at the next commit", "stream_id", l.streamID, "error", err)
		return
	}
	v.stale = false
}

// refresh brings the entries in line with x, encoding only the segments
// that are new or changed, and reports whether anything changed. The
// caller holds l.mu.
func (v *viewWriter) refresh(x *Index) bool {
	changed := false
	for id, s := range x.segments {
		seg := viewSegment(s)
		e, ok := v.entries[id]
		switch {
		case !ok:
			e = &viewEntry{}
			v.entries[id] = e
			// New segments are almost always the newest.
			if n := len(v.ids); n == 0 || v.ids[n-1] < id {
				v.ids = append(v.ids, id)
			} else {
				i, _ := slices.BinarySearch(v.ids, id)
				v.ids = slices.Insert(v.ids, i, id)
			}
		case e.seg == seg:
			continue
		}
		e.seg, e.enc, changed = seg, encodeViewEntry(seg), true
	}
	if len(v.entries) != len(x.segments) {
		v.ids = slices.DeleteFunc(v.ids, func(id types.SegmentID) bool {
			if _, ok := x.segments[id]; ok {
				return false
			}
			delete(v.entries, id)
			return true
		})
		changed = true
	}
	return changed
}

// encodeViewEntry encodes a segment's entry as json.MarshalIndent lays it
// out two levels deep (TestViewEncodingMatchesMarshalIndent checks the
// bytes are the same). It is written out by hand because opening a stream
// encodes every entry once: through encoding/json's reflection that was
// ~3 µs a segment, 30 ms of a 10,000-segment restart.
func encodeViewEntry(s ViewSegment) []byte {
	b := make([]byte, 0, 384)
	b = append(b, "    {\n      \"segment_id\": "...)
	b = strconv.AppendUint(b, uint64(s.SegmentID), 10)
	b = append(b, ",\n      \"residency\": "...)
	b = appendJSONString(b, s.Residency.String())
	b = append(b, ",\n      \"sealed\": "...)
	b = strconv.AppendBool(b, s.Sealed)
	b = append(b, ",\n      \"base_offset\": "...)
	b = strconv.AppendUint(b, s.BaseOffset, 10)
	b = append(b, ",\n      \"durable_bytes\": "...)
	b = strconv.AppendUint(b, s.DurableBytes, 10)
	b = append(b, ",\n      \"segment_crc64\": \"0x"...)
	b = appendHex16(b, uint64(s.SegmentCRC64))
	b = append(b, "\",\n      \"ext_id\": "...)
	b = strconv.AppendUint(b, s.ExtID, 10)
	b = append(b, ",\n      \"tier1\": "...)
	b = appendJSONString(b, s.Tier1.String())
	b = append(b, ",\n      \"compressed_bytes\": "...)
	b = strconv.AppendUint(b, s.CompressedBytes, 10)
	b = append(b, ",\n      \"dictionary_id\": "...)
	b = strconv.AppendUint(b, uint64(s.DictionaryID), 10)
	if s.Tier2Key != "" {
		b = append(b, ",\n      \"tier2_key\": "...)
		b = appendJSONString(b, s.Tier2Key)
	}
	if s.Tier2ETag != "" {
		b = append(b, ",\n      \"tier2_etag\": "...)
		b = appendJSONString(b, s.Tier2ETag)
	}
	return append(b, "\n    }"...)
}

// appendJSONString appends s quoted as encoding/json quotes it: printable
// ASCII other than the characters it escapes goes as is, anything else
// through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil {
				panic(fmt.Sprintf("manifest: encode JSON view: %v", err)) // a string: cannot fail
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendHex16(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[(v>>uint(shift))&0xf])
	}
	return b
}

// assemble appends the whole view, laid out as json.MarshalIndent(View,
// "", "  ") plus a newline, to b.
func (v *viewWriter) assemble(b []byte) []byte {
	b = append(b, "{\n  \"version\": "...)
	b = strconv.AppendInt(b, viewVersion, 10)
	b = append(b, ",\n  \"stream_id\": "...)
	b = strconv.AppendUint(b, uint64(v.stream), 10)
	b = append(b, ",\n  \"segments\": ["...)
	if len(v.ids) == 0 {
		return append(b, "]\n}\n"...)
	}
	for i, id := range v.ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '\n')
		b = append(b, v.entries[id].enc...)
	}
	return append(b, "\n  ]\n}\n"...)
}
