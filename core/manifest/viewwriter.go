package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// viewWriter keeps the JSON view behind the log (flag off).
//
// The view is a second copy of what the log holds, for operators and for
// the parity check that precedes tier1_manifest_log_only; the log alone is
// authoritative. Writing it inside each commit put a file rewrite and two
// fsyncs on every seal and tier move (a commit cost 0.16 ms without the
// view, 0.8 ms with it at 100 segments, 1.9 ms at 5,000:
// BenchmarkSealAmong), so it is written by its own goroutine after the
// commits that change it, at most once per Options.ViewInterval: commits
// never wait for it, and a burst of commits costs one rewrite. The view
// says which log position it reflects (log_records), so that a view left
// behind by a crash is checked against the state the log had there
// (checkParityAt), not reported as divergence. Close, Parity and every
// snapshot write it up to date, so a view never stands before the newest
// snapshot unless its write failed.
//
// The file is rewritten whole but not re-encoded whole: each segment's
// entry is kept encoded and only the entries a commit changed are encoded
// again (encoding the whole view made a seal cost 27 ms of CPU at 5,000
// segments).
type viewWriter struct {
	enabled  bool // set by open, before the Log is shared
	stream   types.StreamID
	interval time.Duration

	// writeMu serialises writes of the file and guards entries, ids, buf,
	// stale and records.
	writeMu sync.Mutex
	entries map[types.SegmentID]*viewEntry
	ids     []types.SegmentID // entries' keys, ascending
	buf     []byte            // the view as last assembled
	// stale: the file may differ from entries (not written yet, or the
	// last write failed).
	stale   bool
	records uint64 // the log_records of the file

	// mu guards the writer goroutine's state; never held across I/O.
	mu struct {
		sync.Mutex
		dirty   bool      // a commit changed the log since the writer last looked
		running bool      // the writer goroutine runs
		closed  bool      // close stopped the writer for good
		last    time.Time // when the writer last wrote
	}
	stop chan struct{} // closed by close
	wg   sync.WaitGroup
}

// viewEntry is one segment's entry of the view, and its encoding as it
// appears in the file (indented for its depth, no separator).
type viewEntry struct {
	seg ViewSegment
	enc []byte
}

// open checks parity at boot, publishes the divergence, and rewrites the
// view from the log when it is behind or differs: the log is
// authoritative.
//
// The file is first compared, byte for byte, with the view the log gives
// at the position the file names (which the writer assembles anyway):
// equal bytes are parity, without decoding the JSON, which cost ~20 ms
// per 1,000 segments at every open. Only a view that differs is decoded,
// and compared with the state the log had at its position.
func (v *viewWriter) open(ctx context.Context, l *Log) error {
	if err := vfs.MkdirAllSync(l.fs, filepath.Join(l.dir, warmDirName)); err != nil {
		return fmt.Errorf("manifest: create warm dir: %w", err)
	}
	v.enabled, v.stream, v.entries = true, l.streamID, map[types.SegmentID]*viewEntry{}
	v.interval, v.stop = l.opts.ViewInterval, make(chan struct{})
	l.mu.Lock()
	v.refresh(l.mu.index)
	segments, records := len(l.mu.index.segments), l.mu.index.Records
	l.mu.Unlock()
	var r ParityReport
	b, err := vfs.ReadFile(l.fs, ViewPath(l.dir))
	if at, ok := viewRecords(b); err == nil && ok && at <= records && bytes.Equal(b, v.assemble(v.buf[:0], at)) {
		r = ParityReport{StreamID: l.streamID, JSONPresent: true, ViewRecords: at, LogRecords: records, ComparedAt: records}
		l.met.observeDivergence(0)
		// Written again at the end: the file's position must not fall
		// behind a snapshot taken from here on.
		v.records, v.stale = at, at != records
	} else if r, err = l.parityHeld(ctx); err != nil {
		return err
	} else {
		v.stale = segments > 0 || r.JSONPresent
	}
	l.replay.Parity = &r
	switch {
	case !r.OK():
		l.log.Warn("manifest JSON view diverges from the log; rewriting it from the log",
			"stream_id", l.streamID, "segments", r.Segments, "json_present", r.JSONPresent, "json_error", r.JSONError,
			"view_records", r.ViewRecords, "log_records", r.LogRecords, "compared_at", r.ComparedAt)
	case r.Behind():
		l.log.Info("manifest JSON view is behind the log and agrees with it there; rewriting it",
			"stream_id", l.streamID, "view_records", r.ViewRecords, "log_records", r.LogRecords)
	}
	// A log with no segments needs no view on disk: an absent view is at
	// parity with it, and the first commit that adds a segment writes one.
	// A new stream is thus created without writing and syncing a file.
	v.flush(l, false)
	return nil
}

// viewRecords reads log_records from the head of a view as assemble lays
// it out; ok is false for any other layout.
func viewRecords(b []byte) (n uint64, ok bool) {
	const key = ",\n  \"log_records\": "
	i := bytes.Index(b[:min(len(b), 128)], []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, ',')
	if j < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	return n, err == nil
}

// committed tells the writer that a commit changed the log; the writer
// goroutine starts if it does not run.
func (v *viewWriter) committed(l *Log) {
	if !v.enabled {
		return
	}
	v.mu.Lock()
	v.mu.dirty = true
	start := !v.mu.running && !v.mu.closed
	if start {
		v.mu.running = true
		v.wg.Add(1)
	}
	v.mu.Unlock()
	if start {
		go v.run(l)
	}
}

// run is the writer goroutine: it writes the view while commits keep
// changing it, no more than once per interval, and exits once a look finds
// nothing new (or close stops it). An idle stream has no writer.
func (v *viewWriter) run(l *Log) {
	defer v.wg.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		v.mu.Lock()
		if v.mu.closed || !v.mu.dirty {
			v.mu.running = false
			v.mu.Unlock()
			return
		}
		if wait := v.interval - time.Since(v.mu.last); wait > 0 && !v.mu.last.IsZero() {
			v.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-v.stop:
			}
			continue
		}
		v.mu.dirty = false
		v.mu.last = time.Now()
		v.mu.Unlock()
		v.flush(l, false)
	}
}

// close stops the writer and, with write, writes the view up to the
// log's end.
func (v *viewWriter) close(l *Log, write bool) {
	if !v.enabled {
		return
	}
	v.mu.Lock()
	already := v.mu.closed
	v.mu.closed = true
	v.mu.Unlock()
	if !already {
		close(v.stop)
	}
	v.wg.Wait()
	if write {
		v.flush(l, true)
	}
}

// flush writes the view if the committed state changed it, or, with
// upToDate, if the file names an earlier log position than the end. A
// failure is logged and retried by the next flush: the view is replaced
// atomically from scratch each time, never patched in place, and the log
// (already durable) stays authoritative, so a failed write costs only
// parity.
func (v *viewWriter) flush(l *Log, upToDate bool) {
	if !v.enabled {
		return
	}
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	l.mu.Lock()
	changed := v.refresh(l.mu.index)
	records, empty := l.mu.index.Records, len(l.mu.index.segments) == 0
	l.mu.Unlock()
	if !changed && !v.stale && (!upToDate || v.records == records || empty && v.records == 0) {
		return
	}
	v.buf = v.assemble(v.buf[:0], records)
	if err := vfs.WriteFileAtomic(l.fs, ViewPath(l.dir), v.buf); err != nil {
		v.stale = true
		l.log.Error("manifest JSON view write failed; retrying after the next commit", "stream_id", l.streamID, "error", err)
		return
	}
	v.stale, v.records = false, records
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

// assemble appends the whole view at log position records, laid out as
// json.MarshalIndent(View, "", "  ") plus a newline, to b.
func (v *viewWriter) assemble(b []byte, records uint64) []byte {
	b = append(b, "{\n  \"version\": "...)
	b = strconv.AppendInt(b, viewVersion, 10)
	b = append(b, ",\n  \"stream_id\": "...)
	b = strconv.AppendUint(b, uint64(v.stream), 10)
	b = append(b, ",\n  \"log_records\": "...)
	b = strconv.AppendUint(b, records, 10)
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
