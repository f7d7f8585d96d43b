package manifest

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Inspector reads a stream's manifest without changing anything: the
// library behind `aof2-host manifest inspect|verify`. It can run against
// the directory of a live Log (it reads only committed bytes).
type Inspector struct {
	fs       vfs.FS
	dir      string
	streamID types.StreamID
}

// NewInspector returns an Inspector of stream streamID whose stream
// directory is dir.
func NewInspector(fsys vfs.FS, dir string, streamID types.StreamID) *Inspector {
	return &Inspector{fs: fsys, dir: dir, streamID: streamID}
}

// InspectOptions select what Inspect decodes.
type InspectOptions struct {
	// Records includes every decoded record of every chunk.
	Records bool
}

// ChunkReport describes one chunk file.
type ChunkReport struct {
	File     string `json:"file"`
	Index    uint64 `json:"index"`
	FileSize int64  `json:"file_size"`
	// Committed is false for a .mlog.tmp chunk whose first commit never
	// completed.
	Committed bool         `json:"committed"`
	Header    *ChunkHeader `json:"header,omitempty"`
	// HeaderValid is false when the header failed its checks (Header then
	// shows what could be decoded, if anything).
	HeaderValid bool `json:"header_valid"`
	CRCValid    bool `json:"crc_valid"`
	// RecordCount counts the records that verified.
	RecordCount int `json:"record_count"`
	// UncommittedBytes is the extent of bytes past committed_len.
	UncommittedBytes int64        `json:"uncommitted_bytes"`
	Error            string       `json:"error,omitempty"`
	ErrorOffset      int64        `json:"error_offset,omitempty"`
	Records          []RecordInfo `json:"records,omitempty"`
}

// SnapshotReport describes one snapshot file.
type SnapshotReport struct {
	File        string `json:"file"`
	ID          uint64 `json:"snapshot_id"`
	ChunkIndex  uint64 `json:"chunk_index,omitempty"`
	ChunkOffset uint64 `json:"chunk_offset,omitempty"`
	Records     uint64 `json:"records,omitempty"`
	Segments    int    `json:"segments,omitempty"`
	Bytes       int    `json:"bytes"`
	Error       string `json:"error,omitempty"`
}

// Inspection is a whole stream's manifest, as found on disk.
type Inspection struct {
	StreamID  types.StreamID   `json:"stream_id"`
	Dir       string           `json:"dir"`
	Chunks    []ChunkReport    `json:"chunks"`
	Snapshots []SnapshotReport `json:"snapshots"`
	// Other lists files in the manifest directory that are neither chunks
	// nor snapshots.
	Other []string `json:"other,omitempty"`
	// Segments is the folded per-segment state a replay produces, after
	// the log's Records committed records.
	Segments []SegmentState `json:"segments"`
	Records  uint64         `json:"records"`
	Replay   ReplayStats    `json:"replay"`
}

// Inspect reads every chunk and snapshot, and replays the manifest (read
// only) for the folded state.
func (i *Inspector) Inspect(ctx context.Context, o InspectOptions) (*Inspection, error) {
	mdir := filepath.Join(i.dir, manifestDirName)
	res, err := replay(ctx, i.fs, mdir, i.streamID, SystemClock)
	if err != nil {
		return nil, err
	}
	out := &Inspection{StreamID: i.streamID, Dir: i.dir, Replay: res.stats, Segments: res.index.Segments(), Records: res.index.Records,
		Other: slices.Concat(res.listing.junk, res.listing.foreign)}
	all := append(slices.Clone(res.listing.chunks), res.listing.tmps...)
	for n, idx := range all {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tmp := n >= len(res.listing.chunks)
		cr, err := readChunk(i.fs, mdir, idx, tmp, true)
		if err != nil {
			return nil, err
		}
		out.Chunks = append(out.Chunks, chunkReport(cr, o.Records))
	}
	for _, id := range res.listing.snapshots {
		out.Snapshots = append(out.Snapshots, i.snapshotReport(mdir, id))
	}
	return out, nil
}

func chunkReport(cr *chunkRead, records bool) ChunkReport {
	r := ChunkReport{File: cr.name, Index: cr.index, FileSize: cr.size, Committed: !cr.tmp,
		HeaderValid: cr.hdrOK, CRCValid: cr.crcOK, RecordCount: len(cr.records), UncommittedBytes: cr.tailLag}
	if cr.hdrOK || cr.hdr != (ChunkHeader{}) {
		h := cr.hdr
		r.Header = &h
	}
	if cr.err != nil {
		r.Error, r.ErrorOffset = cr.err.Error(), cr.errOff
	}
	if records {
		r.Records = cr.records
	}
	return r
}

func (i *Inspector) snapshotReport(mdir string, id uint64) SnapshotReport {
	name := snapshotName(id)
	r := SnapshotReport{File: name, ID: id}
	b, err := vfs.ReadFile(i.fs, filepath.Join(mdir, name))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Bytes = len(b)
	s, err := decodeSnapshot(b, i.streamID)
	if err == nil && s.ID != id {
		err = corruptf("snapshot_id %d in file %s", s.ID, name)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.ChunkIndex, r.ChunkOffset, r.Records, r.Segments = s.ChunkIndex, s.ChunkOffset, s.Index.Records, s.Index.Len()
	return r
}

// Severity ranks a finding.
type Severity string

// Severities. A CLI exits non-zero on any SeverityError or SeverityWarning
// finding; SeverityInfo is reported only.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Finding is one problem Verify found.
type Finding struct {
	Severity Severity `json:"severity"`
	// Code is stable, for scripts: e.g. chunk_crc, chunk_gap, snapshot_invalid.
	Code string `json:"code"`
	File string `json:"file,omitempty"`
	// Key is the tier-2 object a tier2_* finding is about.
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// ChunkStore lists the manifest chunks present in tier 2 (by index). It
// arrives with tiering; Verify checks tier-2 presence when given one.
type ChunkStore interface {
	ChunkObjects(ctx context.Context) ([]uint64, error)
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// LogOnly: when false, the JSON view is checked for parity too.
	LogOnly bool
	// Tier2, when set, is checked for every chunk flagged uploaded and every
	// chunk retention already removed locally.
	Tier2 ChunkStore
	// Objects, when set, runs after the local checks with the inspection
	// they ran on, and its findings are added to Verify's: how a caller
	// holding a tier-2 store checks every object the manifest places there
	// (`aof2-host manifest verify` Heads each one). Its error aborts Verify.
	Objects func(ctx context.Context, in *Inspection) ([]Finding, error)
}

// Verify recomputes every CRC (chunks, records, snapshots) and checks the
// structural and retention invariants, returning what it found. An empty
// result means the manifest is sound. The error is for I/O failures only.
func (i *Inspector) Verify(ctx context.Context, o VerifyOptions) ([]Finding, error) {
	in, err := i.Inspect(ctx, InspectOptions{Records: true})
	if err != nil {
		return nil, err
	}
	v := &verifier{in: in}
	v.chunks()
	v.snapshots()
	v.retention()
	if !o.LogOnly {
		x := NewIndex(i.streamID)
		for _, s := range in.Segments {
			x.put(&s)
		}
		x.Records = in.Records
		r, err := checkParityAt(ctx, i.fs, i.dir, x, stateAt(i.fs, i.dir, i.streamID))
		if err != nil {
			return nil, err
		}
		if !r.OK() {
			v.add(SeverityError, "json_parity", jsonViewName, "JSON view diverges from the log in %d segments (%s)", r.Segments, r.JSONError)
		}
	}
	if o.Tier2 != nil {
		if err := v.tier2(ctx, o.Tier2); err != nil {
			return nil, err
		}
	}
	if o.Objects != nil {
		f, err := o.Objects(ctx, in)
		if err != nil {
			return nil, err
		}
		v.out = append(v.out, f...)
	}
	return v.out, nil
}

type verifier struct {
	in  *Inspection
	out []Finding
}

func (v *verifier) add(sev Severity, code, file, format string, args ...any) {
	v.out = append(v.out, Finding{Severity: sev, Code: code, File: file, Message: fmt.Sprintf(format, args...)})
}

// Parity compares the stream's JSON view (warm/manifest.json) with the view
// a read-only replay of the log produces: what `manifest parity` reports
// before an operator turns tier1_manifest_log_only on.
func (i *Inspector) Parity(ctx context.Context) (ParityReport, error) {
	mdir := filepath.Join(i.dir, manifestDirName)
	res, err := replay(ctx, i.fs, mdir, i.streamID, SystemClock)
	if err != nil {
		return ParityReport{}, err
	}
	return checkParityAt(ctx, i.fs, i.dir, res.index, stateAt(i.fs, i.dir, i.streamID))
}
