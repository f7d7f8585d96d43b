package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// View is the tier-1 JSON view of a stream (warm/manifest.json): the
// per-segment residency and artifact facts that tier 1 persisted before the
// binary log existed. With tier1_manifest_log_only off it is written behind
// the log, after the commits that change it (viewwriter.go); the log stays
// authoritative either way.
type View struct {
	Version  int            `json:"version"`
	StreamID types.StreamID `json:"stream_id"`
	// LogRecords is how many log records the view reflects: it is the
	// state the log had after its first LogRecords records. A view of
	// version 1 does not say (zero).
	LogRecords uint64        `json:"log_records"`
	Segments   []ViewSegment `json:"segments"`
}

// ViewSegment is one segment of the JSON view.
type ViewSegment struct {
	SegmentID       types.SegmentID `json:"segment_id"`
	Residency       Residency       `json:"residency"`
	Sealed          bool            `json:"sealed"`
	BaseOffset      uint64          `json:"base_offset"`
	DurableBytes    uint64          `json:"durable_bytes"`
	SegmentCRC64    Hex64           `json:"segment_crc64"`
	ExtID           uint64          `json:"ext_id"`
	Tier1           Tier1State      `json:"tier1"`
	CompressedBytes uint64          `json:"compressed_bytes"`
	DictionaryID    uint32          `json:"dictionary_id"`
	Tier2Key        string          `json:"tier2_key,omitempty"`
	Tier2ETag       string          `json:"tier2_etag,omitempty"`
}

// viewVersion is the version written; version 1 (no log_records) is read.
const (
	viewVersion         = 2
	viewVersionUnplaced = 1
)

// ViewOf derives the JSON view from an index.
func ViewOf(x *Index) View {
	v := View{Version: viewVersion, StreamID: x.StreamID, LogRecords: x.Records, Segments: []ViewSegment{}}
	for _, s := range x.Segments() {
		v.Segments = append(v.Segments, viewSegment(&s))
	}
	return v
}

func viewSegment(s *SegmentState) ViewSegment {
	return ViewSegment{
		SegmentID: s.SegmentID, Residency: s.Residency, Sealed: s.Sealed, BaseOffset: s.BaseOffset,
		DurableBytes: s.DurableBytes, SegmentCRC64: s.SegmentCRC64, ExtID: s.ExtID,
		Tier1: s.Tier1.State, CompressedBytes: s.Tier1.CompressedBytes, DictionaryID: s.Tier1.DictionaryID,
		Tier2Key: s.Tier2.Key, Tier2ETag: s.Tier2.ETag,
	}
}

// ViewPath is the path of the JSON view of the stream directory dir.
func ViewPath(dir string) string { return filepath.Join(dir, warmDirName, jsonViewName) }

// ReadView reads and decodes the JSON view of stream directory dir.
// Unknown fields are an error: the view is a contract, not a free-form file.
func ReadView(fsys vfs.FS, dir string) (View, error) {
	b, err := vfs.ReadFile(fsys, ViewPath(dir))
	if err != nil {
		return View{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v View
	if err := dec.Decode(&v); err != nil {
		return View{}, corruptf("%s: %v", ViewPath(dir), err)
	}
	// One document: bytes after it (a second document, a torn rewrite's
	// leftovers) are damage too, not something to ignore.
	if tok, err := dec.Token(); err != io.EOF {
		return View{}, corruptf("%s: data after the view (%v, %v)", ViewPath(dir), tok, err)
	}
	switch {
	case v.Version == viewVersionUnplaced && v.LogRecords == 0:
	case v.Version != viewVersion:
		return View{}, corruptf("%s: version %d, want %d", ViewPath(dir), v.Version, viewVersion)
	}
	return v, nil
}

// Divergence is one difference between the JSON view and the log view.
type Divergence struct {
	SegmentID types.SegmentID `json:"segment_id"`
	Field     string          `json:"field"`
	JSON      string          `json:"json"`
	Log       string          `json:"log"`
}

// ParityReport compares the JSON view with the log-derived view.
type ParityReport struct {
	StreamID    types.StreamID `json:"stream_id"`
	JSONPresent bool           `json:"json_present"`
	// JSONError says why the JSON view could not be read, if it could not.
	JSONError string `json:"json_error,omitempty"`
	// Segments is the number of segments that differ (the value of
	// aof_manifest_shadow_divergence); Divergences lists the fields.
	Segments    int          `json:"divergent_segments"`
	Divergences []Divergence `json:"divergences,omitempty"`
	// ViewRecords is the log position the view says it reflects (its
	// log_records; zero for an absent view or one of version 1) and
	// LogRecords the log's committed end. The view is written behind the
	// log, so after a crash it may stand at an earlier record: it is then
	// compared with the state the log had there, ComparedAt, when replay
	// can rebuild that state (it is not older than the newest snapshot),
	// and with the end otherwise.
	ViewRecords uint64 `json:"view_records"`
	LogRecords  uint64 `json:"log_records"`
	ComparedAt  uint64 `json:"compared_at"`
}

// Behind reports whether the view reflected an earlier state of the log
// than its end (it is rewritten from the log at open).
func (r ParityReport) Behind() bool {
	return r.JSONPresent && r.JSONError == "" && r.ComparedAt < r.LogRecords
}

// OK reports parity.
func (r ParityReport) OK() bool { return r.Segments == 0 && r.JSONError == "" }

// Parity compares two views field by field.
func Parity(jsonView, logView View) ParityReport {
	r := ParityReport{StreamID: logView.StreamID, JSONPresent: true}
	js, ls := bySegment(jsonView), bySegment(logView)
	ids := keysOf(js)
	maps.Copy(ids, keysOf(ls))
	if jsonView.StreamID != logView.StreamID {
		r.Divergences = append(r.Divergences, Divergence{Field: "stream_id",
			JSON: strconv.FormatUint(uint64(jsonView.StreamID), 10), Log: strconv.FormatUint(uint64(logView.StreamID), 10)})
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		j, jok := js[id]
		g, gok := ls[id]
		var diffs []Divergence
		switch {
		case !jok:
			diffs = []Divergence{{SegmentID: id, Field: "segment", JSON: "absent", Log: "present"}}
		case !gok:
			diffs = []Divergence{{SegmentID: id, Field: "segment", JSON: "present", Log: "absent"}}
		default:
			diffs = diffSegments(j, g)
		}
		if len(diffs) > 0 {
			r.Segments++
			r.Divergences = append(r.Divergences, diffs...)
		}
	}
	return r
}

func bySegment(v View) map[types.SegmentID]ViewSegment {
	m := make(map[types.SegmentID]ViewSegment, len(v.Segments))
	for _, s := range v.Segments {
		m[s.SegmentID] = s
	}
	return m
}

func diffSegments(j, g ViewSegment) []Divergence {
	var out []Divergence
	add := func(field string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			out = append(out, Divergence{SegmentID: j.SegmentID, Field: field, JSON: fmt.Sprint(a), Log: fmt.Sprint(b)})
		}
	}
	add("residency", j.Residency, g.Residency)
	add("sealed", j.Sealed, g.Sealed)
	add("base_offset", j.BaseOffset, g.BaseOffset)
	add("durable_bytes", j.DurableBytes, g.DurableBytes)
	add("segment_crc64", j.SegmentCRC64, g.SegmentCRC64)
	add("ext_id", j.ExtID, g.ExtID)
	add("tier1", j.Tier1, g.Tier1)
	add("compressed_bytes", j.CompressedBytes, g.CompressedBytes)
	add("dictionary_id", j.DictionaryID, g.DictionaryID)
	add("tier2_key", j.Tier2Key, g.Tier2Key)
	add("tier2_etag", j.Tier2ETag, g.Tier2ETag)
	return out
}

// CheckParity reads the JSON view of stream directory dir and compares it
// with the view derived from x, the log's end state.
func CheckParity(fsys vfs.FS, dir string, x *Index) ParityReport {
	r, _ := checkParityAt(context.Background(), fsys, dir, x, nil)
	return r
}

// checkParityAt is CheckParity for a view that may stand behind the log:
// a view whose log_records is short of x's is compared with at(records),
// the state the log had there, unless at is nil or returns nil (replay
// cannot rebuild it). An absent view stands at record 0, before any
// commit: it is behind, not divergent, while the log can show it had no
// segments then.
func checkParityAt(ctx context.Context, fsys vfs.FS, dir string, x *Index, at func(context.Context, uint64) (*Index, error)) (ParityReport, error) {
	jv, err := ReadView(fsys, dir)
	present := !vfs.IsNotExist(err)
	if err != nil {
		jv = View{Version: viewVersion, StreamID: x.StreamID}
	}
	want := x
	if at != nil && (err == nil && jv.Version == viewVersion || !present) && jv.LogRecords < x.Records {
		past, aerr := at(ctx, jv.LogRecords)
		if aerr != nil {
			return ParityReport{}, aerr
		}
		if past != nil {
			want = past
		}
	}
	r := Parity(jv, ViewOf(want))
	r.JSONPresent, r.ViewRecords, r.LogRecords, r.ComparedAt = present, jv.LogRecords, x.Records, want.Records
	if err != nil && present {
		r.JSONError = err.Error()
		r.Segments = max(r.Segments, 1)
	}
	return r, nil
}

// stateAt returns at for checkParityAt: the state of the log of stream
// directory dir after records records, by a read-only replay.
func stateAt(fsys vfs.FS, dir string, streamID types.StreamID) func(context.Context, uint64) (*Index, error) {
	return func(ctx context.Context, records uint64) (*Index, error) {
		return replayTo(ctx, fsys, filepath.Join(dir, manifestDirName), streamID, records)
	}
}

// Parity brings the JSON view on disk up to the Log's committed state,
// compares the two and publishes aof_manifest_shadow_divergence. It holds
// the commit token so that no commit changes either side meanwhile.
func (l *Log) Parity(ctx context.Context) (ParityReport, error) {
	if err := acquire(ctx, l.commitTok); err != nil {
		return ParityReport{}, err
	}
	defer l.releaseCommit()
	l.view.flush(l, true)
	return l.parityHeld(ctx)
}

// parityHeld compares the view on disk with the log, as it stands; the
// caller holds the commit token.
func (l *Log) parityHeld(ctx context.Context) (ParityReport, error) {
	l.mu.Lock()
	x := l.mu.index.Clone()
	l.mu.Unlock()
	r, err := checkParityAt(ctx, l.fs, l.dir, x, stateAt(l.fs, l.dir, l.streamID))
	if err != nil {
		return ParityReport{}, err
	}
	l.met.observeDivergence(r.Segments)
	return r, nil
}
