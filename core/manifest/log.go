package manifest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Log is the manifest log of one stream: the writer of its chunks and
// snapshots and the keeper of its folded Index. All methods are safe for
// concurrent use.
//
// Concurrency: mu guards the in-memory state and is never held across I/O.
// The commit token (a one-slot channel, so that waiting honours a context)
// is held by whoever writes chunk files; commits are serialised by it and
// group naturally: a commit takes every record appended so far.
type Log struct {
	fs       vfs.FS
	dir      string // stream directory
	mdir     string // <dir>/manifest
	streamID types.StreamID
	opts     Options
	log      hclog.Logger
	met      *streamMetrics
	replay   ReplayStats

	commitTok chan struct{} // held while writing chunks; guards w, sealed
	w         chunkWriter
	view      viewWriter
	sealed    []SealedChunk // sealed under the token, announced on release
	snapTok   chan struct{} // serialises Snapshot and Repair
	retainTok chan struct{} // serialises MarkUploaded and retention

	mu struct {
		sync.Mutex
		closing     bool  // Close started: no new work accepted
		closed      bool  // Close finished
		failed      error // fail-stop cause, wraps ErrFailed
		pending     []*pendingChunk
		appended    uint64 // records appended (ordinal of the next one)
		durable     uint64 // records committed
		index       *Index // committed records folded
		chunks      map[uint64]*chunkMeta
		snapshots   []snapMeta // valid snapshots on disk, ascending id
		snapFiles   []uint64   // every snapshot file on disk, ascending id
		nextSnapID  uint64
		needsRepair bool
		sinceSnap   int64 // committed bytes since the latest snapshot
		sealedSince int   // chunks sealed since the latest snapshot
		bgRunning   bool  // the background goroutine runs (wakeBackgroundLocked)
		// openSince is when a commit first left records in the chunk
		// commits now go to without sealing it; zero while that chunk
		// holds no committed record. The rotation timer seals the chunk
		// once it is a period old, so that committed records reach a
		// sealed chunk (and tier 2) in bounded time.
		openSince time.Time
	}

	// The background goroutine (rotation timer, automatic snapshots) runs
	// only while it has work: mu.bgRunning says whether it runs. bgCtx is
	// set by Open and cancelled by Close, which then waits on bgWG.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup
	kick     chan struct{} // one-slot: request an automatic snapshot
}

func newToken() chan struct{} { return make(chan struct{}, 1) }

// acquire takes a token, or returns ctx's error.
func acquire(ctx context.Context, tok chan struct{}) error {
	select {
	case tok <- struct{}{}:
		return nil
	default:
	}
	select {
	case tok <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(tok chan struct{}) { <-tok }

// releaseCommit releases the commit token, then announces the chunks sealed
// while it was held, so that Options.OnChunkSealed runs with no lock or
// token held and may call back into the Log.
func (l *Log) releaseCommit() {
	sealed := l.sealed
	l.sealed = nil
	release(l.commitTok)
	if l.opts.OnChunkSealed != nil {
		for _, c := range sealed {
			l.opts.OnChunkSealed(c)
		}
	}
}

// StreamID returns the stream the Log belongs to.
func (l *Log) StreamID() types.StreamID { return l.streamID }

// Replay returns the statistics of the replay Open performed.
func (l *Log) Replay() ReplayStats {
	st := l.replay
	st.Corruptions = slices.Clone(st.Corruptions)
	return st
}

// NeedsRepair reports whether replay found damage that Repair has not yet
// resolved.
func (l *Log) NeedsRepair() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.needsRepair
}

// Index returns a copy of the folded state of every committed record.
func (l *Log) Index() *Index {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.index.Clone()
}

// Segment returns the committed state of one segment.
func (l *Log) Segment(id types.SegmentID) (SegmentState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.index.Segment(id)
}

// Err returns the fail-stop error, or nil while the Log is healthy.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.failed
}

// usableLocked returns why the Log cannot take new work, if it cannot.
func (l *Log) usableLocked() error {
	switch {
	case l.mu.failed != nil:
		return l.mu.failed
	case l.mu.closing:
		return ErrClosed
	}
	return nil
}

// fail enters the fail-stop state (keeping the first cause) and returns it.
func (l *Log) fail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.failed == nil {
		l.mu.failed = err
		l.log.Error("manifest log failed; refusing further writes until reopened", "stream_id", l.streamID, "error", err)
	}
	return l.mu.failed
}

// Append adds rec to the active chunk. It does no I/O: the record is
// durable only once a Commit (or the rotation timer) has committed it.
// A zero TimestampMS is filled from the Log's clock. SnapshotMarker and
// Unknown records cannot be appended.
func (l *Log) Append(rec Record) error {
	return l.append([]Record{rec}, false)
}

// AppendCommit appends recs and commits them. The records are atomic: they
// land in one chunk and one commit, so after a crash either all of them or
// none are in the log (ErrRecordTooLarge if together they exceed a chunk).
// Records appended earlier by other callers are committed with them.
func (l *Log) AppendCommit(ctx context.Context, recs ...Record) error {
	if len(recs) == 0 {
		return l.Commit(ctx)
	}
	if err := l.append(recs, true); err != nil {
		return err
	}
	err := l.Commit(ctx)
	if err != nil && l.opts.RotationPeriod > 0 {
		// ctx ended before the commit: the rotation timer commits them.
		l.mu.Lock()
		if l.mu.appended > l.mu.durable {
			l.wakeBackgroundLocked()
		}
		l.mu.Unlock()
	}
	return err
}

func (l *Log) append(in []Record, atomic bool) error {
	recs := make([]Record, len(in))
	for i, r := range in {
		r, ok := byValue(r)
		if !ok {
			return invalidf("nil record")
		}
		recs[i] = r
		switch r.(type) {
		case SnapshotMarker:
			return invalidf("SnapshotMarker is written by Snapshot only")
		case Unknown:
			return invalidf("records of unknown type cannot be appended")
		}
	}
	return l.appendRecords(recs, atomic)
}

// appendRecords encodes recs and queues them (no type restrictions). It
// may replace elements of recs (timestamps); callers pass their own copy.
func (l *Log) appendRecords(recs []Record, atomic bool) error {
	now := uint64(l.opts.Clock.Now().UnixMilli())
	frames := make([][]byte, len(recs))
	var buf []byte
	var total int64
	maxBody := l.opts.ChunkCapacity - chunkHeaderLen
	for i, r := range recs {
		if h := r.GetHeader(); h.TimestampMS == 0 {
			h.TimestampMS = now
			recs[i] = r.withHeader(h)
		}
		start := len(buf)
		var err error
		if buf, err = appendRecord(buf, recs[i]); err != nil {
			return fmt.Errorf("manifest: append %s for segment %d: %w", recs[i].Type(), recs[i].GetHeader().SegmentID, err)
		}
		frames[i] = buf[start:]
		if n := int64(len(frames[i])); n > maxBody {
			return fmt.Errorf("%w: %s of %d bytes, chunk capacity %d", ErrRecordTooLarge, recs[i].Type(), n, l.opts.ChunkCapacity)
		}
		total += int64(len(frames[i]))
	}
	if atomic && total > maxBody {
		return fmt.Errorf("%w: batch of %d records is %d bytes, chunk capacity %d", ErrRecordTooLarge, len(recs), total, l.opts.ChunkCapacity)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	p := l.mu.pending[len(l.mu.pending)-1]
	if atomic && p.end()+total > l.opts.ChunkCapacity {
		p = l.rotateLocked()
	}
	for i, f := range frames {
		if p.end()+int64(len(f)) > l.opts.ChunkCapacity {
			p = l.rotateLocked()
		}
		p.lastOff = p.end()
		p.buf = append(p.buf, f...)
		p.recs = append(p.recs, recs[i])
		l.mu.appended++
	}
	if !atomic && l.opts.RotationPeriod > 0 {
		// Committed by the rotation timer unless a commit comes first.
		l.wakeBackgroundLocked()
	}
	return nil
}

// rotateLocked marks the last pending chunk for sealing and starts the next.
func (l *Log) rotateLocked() *pendingChunk {
	p := l.mu.pending[len(l.mu.pending)-1]
	p.seal = true
	next := &pendingChunk{index: p.index + 1, baseRecord: l.mu.appended, start: chunkHeaderLen}
	l.mu.pending = append(l.mu.pending, next)
	return next
}

// Commit makes every record appended before the call durable. Concurrent
// callers share commits (group commit). ctx bounds the wait for another
// caller's commit; once this caller's own I/O has started it runs to
// completion. A write or fsync failure is fail-stop: it and every later
// call return an error wrapping ErrFailed.
func (l *Log) Commit(ctx context.Context) error {
	l.mu.Lock()
	err := l.usableLocked()
	target, durable := l.mu.appended, l.mu.durable
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if durable >= target {
		return nil
	}
	if err := acquire(ctx, l.commitTok); err != nil {
		return err
	}
	defer l.releaseCommit()
	l.mu.Lock()
	durable, failed, closed := l.mu.durable, l.mu.failed, l.mu.closed
	l.mu.Unlock()
	switch {
	case durable >= target:
		return nil
	case failed != nil:
		return failed
	case closed:
		return ErrClosed
	}
	return l.commitHeld(false)
}

// commitHeld commits every pending record; with seal it also seals the
// chunk they end in. The caller holds the commit token and releases it
// with releaseCommit.
func (l *Log) commitHeld(seal bool) error {
	l.mu.Lock()
	if l.mu.failed != nil {
		defer l.mu.Unlock()
		return l.mu.failed
	}
	batch := l.mu.pending
	last := batch[len(batch)-1]
	if seal && (len(last.buf) > 0 || (l.w.f != nil && l.w.hdr.Index == last.index && l.w.hdr.CommittedLen > chunkHeaderLen)) {
		last.seal = true
	}
	work := false
	for _, pc := range batch {
		work = work || len(pc.buf) > 0 || pc.seal
	}
	if !work {
		l.mu.Unlock()
		return nil
	}
	next := &pendingChunk{index: last.index, baseRecord: last.baseRecord, start: last.end()}
	if last.seal {
		next = &pendingChunk{index: last.index + 1, baseRecord: l.mu.appended, start: chunkHeaderLen}
	}
	l.mu.pending = []*pendingChunk{next}
	target := l.mu.appended
	l.mu.Unlock()

	var sealed []SealedChunk
	metas := make([]chunkMeta, 0, len(batch))
	var written int64
	for _, pc := range batch {
		m, didSeal, err := l.w.write(pc)
		if err != nil {
			return l.fail(failStop(fmt.Sprintf("commit to chunk %d of stream %d", pc.index, l.streamID), err))
		}
		written += int64(len(pc.buf))
		if m.named {
			metas = append(metas, m)
		}
		if didSeal {
			sealed = append(sealed, l.sealedChunk(&m, false))
		}
	}

	l.mu.Lock()
	for _, pc := range batch {
		for _, r := range pc.recs {
			l.mu.index.Apply(r)
		}
	}
	l.mu.durable = target
	for i := range metas {
		m := metas[i]
		l.mu.chunks[m.hdr.Index] = &m
	}
	l.mu.sinceSnap += written
	l.mu.sealedSince += len(sealed)
	switch {
	case last.seal:
		l.mu.openSince = time.Time{}
	case len(last.buf) > 0 && l.mu.openSince.IsZero():
		l.mu.openSince = l.opts.Clock.Now()
		if l.opts.RotationPeriod > 0 {
			l.wakeBackgroundLocked()
		}
	}
	wantSnap := len(sealed) > 0 && l.opts.SnapshotEveryBytes > 0 && (l.mu.sinceSnap >= l.opts.SnapshotEveryBytes ||
		l.opts.SnapshotEveryChunks > 0 && l.mu.sealedSince >= l.opts.SnapshotEveryChunks)
	l.mu.Unlock()

	l.view.committed(l)
	l.sealed = append(l.sealed, sealed...)
	if wantSnap {
		select {
		case l.kick <- struct{}{}:
		default:
		}
		l.mu.Lock()
		l.wakeBackgroundLocked()
		l.mu.Unlock()
	}
	return nil
}

// Rotate commits pending records and seals the active chunk, as the
// rotation timer does. It is a no-op when the active chunk is empty.
func (l *Log) Rotate(ctx context.Context) error {
	l.mu.Lock()
	err := l.usableLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if err := acquire(ctx, l.commitTok); err != nil {
		return err
	}
	defer l.releaseCommit()
	return l.commitHeld(true)
}

// Close stops the background goroutine, commits records still pending and
// releases the files. Later calls return ErrClosed. After a fail-stop,
// Close releases the files and returns nil: the failure was reported.
func (l *Log) Close() error {
	// A snapshot in progress finishes first: cut off between its file and
	// its marker, it would leave a file that verify reports as a crash.
	_ = acquire(context.Background(), l.snapTok)
	l.mu.Lock()
	if l.mu.closing {
		l.mu.Unlock()
		release(l.snapTok)
		return ErrClosed
	}
	l.mu.closing = true
	l.mu.Unlock()
	release(l.snapTok)
	l.bgCancel()
	l.bgWG.Wait()
	_ = acquire(context.Background(), l.commitTok)
	defer l.releaseCommit()
	err := l.commitHeld(false)
	if errors.Is(err, ErrFailed) {
		err = nil
	}
	l.view.close(l, true)
	err = errors.Join(err, l.w.close())
	l.mu.Lock()
	l.mu.closed = true
	l.mu.Unlock()
	return err
}

// sealedChunk describes a sealed chunk for upload.
func (l *Log) sealedChunk(m *chunkMeta, uploaded bool) SealedChunk {
	return SealedChunk{
		StreamID:     l.streamID,
		Index:        m.hdr.Index,
		Path:         filepath.Join(l.mdir, chunkName(m.hdr.Index)),
		Size:         m.size,
		BaseRecord:   m.hdr.BaseRecord,
		CommittedLen: m.hdr.CommittedLen,
		CRC64:        m.hdr.CRC64,
		Uploaded:     uploaded || m.hdr.Flags.Uploaded(),
	}
}
