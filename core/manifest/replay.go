package manifest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// CorruptionEvent is one CRC or decode failure found by replay.
type CorruptionEvent struct {
	File       string `json:"file"`
	ChunkIndex uint64 `json:"chunk_index"`
	Offset     int64  `json:"offset"`
	Reason     string `json:"reason"`
}

// ReplayStats describes a replay. The fields behind the four replay metrics are
// ChunksInspected, JournalLagBytes, LastChunkLag and CorruptionEvents.
type ReplayStats struct {
	StreamID types.StreamID `json:"stream_id"`
	// SnapshotID is the snapshot replay started from (0: none).
	SnapshotID     uint64 `json:"snapshot_id"`
	SnapshotChunk  uint64 `json:"snapshot_chunk"`
	SnapshotOffset uint64 `json:"snapshot_offset"`
	// ChunksInspected counts chunk files read (committed and orphaned).
	ChunksInspected int `json:"chunks_inspected"`
	// ChunkBytes counts committed chunk bytes verified.
	ChunkBytes     int64  `json:"chunk_bytes"`
	RecordsApplied uint64 `json:"records_applied"`
	UnknownRecords uint64 `json:"unknown_records"`
	// JournalLagBytes is the extent of uncommitted bytes found past
	// committed_len in the newest chunk plus those of orphaned (never
	// committed) chunks: what crashed commits left. Open trims them.
	JournalLagBytes int64 `json:"journal_lag_bytes"`
	// LastChunk is the newest chunk; LastChunkLag the time spent reading,
	// verifying, applying (and, in Open, trimming) it.
	LastChunk    uint64        `json:"last_chunk"`
	LastChunkLag time.Duration `json:"last_chunk_lag_ns"`
	Duration     time.Duration `json:"duration_ns"`
	// CorruptionEvents counts damaged chunks and snapshots, and gaps.
	CorruptionEvents int               `json:"corruption_events"`
	Corruptions      []CorruptionEvent `json:"corruptions,omitempty"`
	// NeedsRepair is set when committed log bytes could not be applied:
	// residency must be rebuilt from ground truth.
	NeedsRepair bool `json:"needs_repair"`
	// Repaired is set when Open rebuilt residency and wrote a snapshot.
	Repaired bool `json:"repaired"`
	// Parity is the JSON-view parity check made at boot (nil in log-only
	// mode).
	Parity *ParityReport `json:"parity,omitempty"`
}

// snapMeta describes a snapshot file seen by replay.
type snapMeta struct {
	ID          uint64
	ChunkIndex  uint64
	ChunkOffset uint64
	Err         error // nil when valid
}

// replayResult is everything replay learned, for Open and the inspector.
type replayResult struct {
	index   *Index
	stats   ReplayStats
	listing dirListing
	// replayed are the chunks read in full from the snapshot position on;
	// older are the header-only reads of the chunks before it.
	replayed []*chunkRead
	older    []*chunkRead
	orphans  []*chunkRead
	// snapshots examined, newest first; at most the two newest valid ones
	// and the invalid ones newer than them.
	snapshots []snapMeta
	nextChunk uint64
	// at is the state after the first captureAt records, when replay was
	// asked for it (replayTo) and passed through it; nil otherwise.
	at *Index
}

// last returns the newest chunk read in full, or nil.
func (r *replayResult) last() *chunkRead {
	if len(r.replayed) == 0 {
		return nil
	}
	return r.replayed[len(r.replayed)-1]
}

type replayer struct {
	fs       vfs.FS
	mdir     string
	streamID types.StreamID
	clock    Clock
	res      *replayResult
	// captureAt, when set, asks for the state after that many records.
	captureAt *uint64
}

// capture keeps a copy of x if it is the state asked for.
func (p *replayer) capture(x *Index) {
	if p.captureAt != nil && p.res.at == nil && x.Records == *p.captureAt {
		p.res.at = x.Clone()
	}
}

func (p *replayer) corrupt(file string, chunk uint64, off int64, err error) {
	st := &p.res.stats
	st.CorruptionEvents++
	st.Corruptions = append(st.Corruptions, CorruptionEvent{File: file, ChunkIndex: chunk, Offset: off, Reason: err.Error()})
}

// replay folds the newest valid snapshot and the chunks after its position
// into an Index. It only reads: trimming and sealing are Open's business.
func replay(ctx context.Context, fsys vfs.FS, mdir string, streamID types.StreamID, clock Clock) (*replayResult, error) {
	return replayCapturing(ctx, fsys, mdir, streamID, clock, nil)
}

// replayTo replays as replay does and returns the state the log had after
// its first records records, or nil when replay did not pass through it
// (it lies before the snapshot replay starts from, or past the end).
func replayTo(ctx context.Context, fsys vfs.FS, mdir string, streamID types.StreamID, records uint64) (*Index, error) {
	res, err := replayCapturing(ctx, fsys, mdir, streamID, SystemClock, &records)
	if err != nil {
		return nil, err
	}
	return res.at, nil
}

func replayCapturing(ctx context.Context, fsys vfs.FS, mdir string, streamID types.StreamID, clock Clock, at *uint64) (*replayResult, error) {
	began := clock.Now()
	p := &replayer{fs: fsys, mdir: mdir, streamID: streamID, clock: clock, captureAt: at,
		res: &replayResult{stats: ReplayStats{StreamID: streamID}}}
	res, st := p.res, &p.res.stats
	var err error
	if res.listing, err = listManifest(fsys, mdir); err != nil {
		return nil, err
	}
	snap, err := p.loadSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	x := NewIndex(streamID)
	startChunk, startOff := uint64(0), uint64(chunkHeaderLen)
	if snap != nil {
		x = snap.Index
		startChunk, startOff = snap.ChunkIndex, snap.ChunkOffset
		st.SnapshotID, st.SnapshotChunk, st.SnapshotOffset = snap.ID, snap.ChunkIndex, snap.ChunkOffset
	}
	p.capture(x)
	chunks := res.listing.chunks
	res.nextChunk = startChunk
	if startOff > chunkHeaderLen {
		res.nextChunk = startChunk + 1
	}
	if n := len(chunks); n > 0 {
		res.nextChunk = max(res.nextChunk, chunks[n-1]+1)
	}
	expect, resync := startChunk, false
	for i, idx := range chunks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if idx < startChunk {
			h, size, err := readChunkHeader(fsys, filepath.Join(mdir, chunkName(idx)))
			if err != nil && !isCorrupt(err) {
				return nil, fmt.Errorf("manifest: read %s: %w", chunkName(idx), err)
			}
			cr := &chunkRead{name: chunkName(idx), index: idx, size: size, hdr: h, hdrOK: err == nil, err: err}
			if cr.hdrOK && !h.Flags.Uploaded() {
				// Not yet in tier 2: it will be listed for upload, so its
				// bytes must verify (a damage found before a repair
				// snapshot must not be forgotten once the chunk lies
				// before it).
				full, rerr := readChunk(fsys, mdir, idx, false, false)
				if rerr != nil {
					return nil, rerr
				}
				cr.err, cr.errOff = full.err, full.errOff
			}
			res.older = append(res.older, cr)
			continue
		}
		isLast := i == len(chunks)-1
		t0 := clock.Now()
		if idx != expect {
			p.corrupt(chunkName(expect), expect, 0, corruptf("chunks %d to %d are missing", expect, idx-1))
			resync = true
		}
		expect = idx + 1
		cr, err := readChunk(fsys, mdir, idx, false, isLast)
		if err != nil {
			return nil, err
		}
		res.replayed = append(res.replayed, cr)
		st.ChunksInspected++
		resync = p.apply(x, cr, idx == startChunk, startOff, resync)
		if isLast {
			st.JournalLagBytes += cr.tailLag
			st.LastChunk = idx
			st.LastChunkLag = clock.Now().Sub(t0)
		}
	}
	if startOff > chunkHeaderLen && len(res.replayed) == 0 {
		// The snapshot covers part of a chunk that is gone, and nothing
		// after it remains: whatever followed the position is lost.
		p.corrupt(chunkName(startChunk), startChunk, int64(startOff), corruptf("chunk %d, holding the snapshot position, is missing", startChunk))
	}
	for _, idx := range res.listing.tmps {
		cr, err := readChunk(fsys, mdir, idx, true, true)
		if err != nil {
			return nil, err
		}
		res.orphans = append(res.orphans, cr)
		st.ChunksInspected++
		st.JournalLagBytes += cr.tailLag
	}
	p.capture(x)
	st.NeedsRepair = st.CorruptionEvents > 0 && p.lostCommitted()
	st.Duration = clock.Now().Sub(began)
	res.index = x
	return res, nil
}

// lostCommitted reports whether any corruption touched committed log bytes
// (as opposed to a damaged snapshot that an older snapshot or the full log
// replaced without loss).
func (p *replayer) lostCommitted() bool {
	for _, c := range p.res.stats.Corruptions {
		if _, ok := parseSnapshotName(c.File); !ok {
			return true
		}
	}
	return false
}

// apply folds the records of one chunk into x, checking that the record
// sequence continues where the previous chunk (or the snapshot) ended. It
// returns whether the next chunk must resynchronise its ordinal.
func (p *replayer) apply(x *Index, cr *chunkRead, isStart bool, startOff uint64, resync bool) bool {
	st := &p.res.stats
	if !cr.hdrOK {
		p.corrupt(cr.name, cr.index, cr.errOff, cr.err)
		return true
	}
	st.ChunkBytes += int64(cr.hdr.CommittedLen)
	skipping := isStart && startOff > chunkHeaderLen
	switch {
	case skipping:
		// Checked when the walk reaches the snapshot position.
	case resync:
		x.Records = cr.hdr.BaseRecord
	case cr.hdr.BaseRecord != x.Records:
		p.corrupt(cr.name, cr.index, 24, corruptf("base_record %d, previous records end at %d", cr.hdr.BaseRecord, x.Records))
		x.Records = cr.hdr.BaseRecord
	}
	unknown := x.UnknownRecords
	reached := !skipping
	for _, r := range cr.records {
		if !reached {
			if uint64(r.Offset) < startOff {
				continue
			}
			reached = true
			if uint64(r.Offset) != startOff {
				p.corrupt(cr.name, cr.index, int64(startOff), corruptf("snapshot position %d is not a record boundary", startOff))
			} else if r.Ordinal != x.Records {
				p.corrupt(cr.name, cr.index, r.Offset, corruptf("record at the snapshot position has ordinal %d, snapshot covers %d", r.Ordinal, x.Records))
				x.Records = r.Ordinal
			}
		}
		p.capture(x)
		x.Apply(r.Record)
		st.RecordsApplied++
	}
	st.UnknownRecords += x.UnknownRecords - unknown
	if !reached && cr.err == nil {
		// Every record precedes the snapshot position: it must be the end.
		if end := cr.hdr.BaseRecord + uint64(len(cr.records)); uint64(cr.walkEnd) != startOff {
			p.corrupt(cr.name, cr.index, int64(startOff), corruptf("snapshot position %d is beyond the committed records (end %d)", startOff, cr.walkEnd))
		} else if end != x.Records {
			p.corrupt(cr.name, cr.index, int64(startOff), corruptf("chunk ends at ordinal %d, snapshot covers %d", end, x.Records))
		}
	}
	if cr.err != nil {
		p.corrupt(cr.name, cr.index, cr.errOff, cr.err)
		// The chunk stops here; the next chunk's base_record is trusted.
		x.Records = max(x.Records, cr.hdr.BaseRecord+uint64(len(cr.records)))
		return true
	}
	return false
}

// loadSnapshots finds the newest valid snapshot (decoded in full) and
// verifies the next older valid one (CRC and header only), for retention.
// Invalid snapshots are corruption events but never fatal: replay falls
// back to an older snapshot or the log from chunk 0.
func (p *replayer) loadSnapshots(ctx context.Context) (*Snapshot, error) {
	var chosen *Snapshot
	ids := p.res.listing.snapshots
	for i := len(ids) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := snapshotName(ids[i])
		b, err := vfs.ReadFile(p.fs, filepath.Join(p.mdir, name))
		if err != nil {
			return nil, fmt.Errorf("manifest: read %s: %w", name, err)
		}
		var m snapMeta
		var decoded *Snapshot
		if chosen == nil {
			var s Snapshot
			if s, err = decodeSnapshot(b, p.streamID); err == nil {
				decoded = &s
				m = snapMeta{ID: s.ID, ChunkIndex: s.ChunkIndex, ChunkOffset: s.ChunkOffset}
			}
		} else {
			m, err = peekSnapshot(b, p.streamID)
		}
		if err == nil && m.ID != ids[i] {
			// Only this file is rejected; a newer snapshot already chosen stays.
			err = corruptf("snapshot_id %d in file %s", m.ID, name)
			decoded = nil
		}
		if decoded != nil {
			chosen = decoded
		}
		if err != nil {
			m = snapMeta{ID: ids[i], Err: err}
			p.corrupt(name, 0, 0, err)
		}
		p.res.snapshots = append(p.res.snapshots, m)
		if valid := countValid(p.res.snapshots); valid == 2 {
			break
		}
	}
	return chosen, nil
}

func isCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }

func countValid(s []snapMeta) int {
	n := 0
	for _, m := range s {
		if m.Err == nil {
			n++
		}
	}
	return n
}

// peekSnapshot verifies a snapshot's CRC and reads its header fields,
// without decoding the segment entries.
func peekSnapshot(b []byte, streamID types.StreamID) (snapMeta, error) {
	if err := checkPreamble(b, "snapshot", snapMagic, snapVersion, snapHeaderLen, snapHeaderLen+snapTrailerLen); err != nil {
		return snapMeta{}, err
	}
	end := len(b) - snapTrailerLen
	if le.Uint64(b[end:]) != checksum.Sum64(b[:end]) {
		return snapMeta{}, corruptf("snapshot: crc64 mismatch")
	}
	if types.StreamID(le.Uint64(b[16:])) != streamID {
		return snapMeta{}, corruptf("snapshot: stream_id %d, want %d", le.Uint64(b[16:]), streamID)
	}
	return snapMeta{ID: le.Uint64(b[24:]), ChunkIndex: le.Uint64(b[32:]), ChunkOffset: le.Uint64(b[40:])}, nil
}
