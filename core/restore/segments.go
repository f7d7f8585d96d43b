package restore

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
)

// entry is one segment id of a restored stream: cold when tier 2 holds
// its object, lost otherwise.
type entry struct {
	id     types.SegmentID
	st     manifest.SegmentState
	inHist bool
	obj    *tier2.Listed // nil: lost
	h      segment.Header
	f      segment.Footer
	// recorded: tier 2 holds the entry's lost stub already (an earlier
	// restore recorded it, tier2.Store.RecordLost); h and f are its.
	recorded bool
	// err: describing the object failed (RunCluster cuts its run there).
	err error
}

// knownBase is the base offset the history recorded for e.
func (e *entry) knownBase() (uint64, bool) { return e.st.BaseOffset, e.inHist }

// maxIDsUnaccounted bounds the ids a restore takes that nothing in tier 2
// names (the gaps between what the history, the objects and the lost
// records name, and the reservation's window past them): far more than a
// writer can have activated between two manifest uploads.
const maxIDsUnaccounted = 1 << 16

// checkSpan refuses a plan of the ids first to last of which at most
// named are named by tier 2 when more than maxIDsUnaccounted are not: a
// stray or damaged key far past the stream's ids would make every id up
// to it an entry and a lost record.
func checkSpan(stream types.StreamID, first, last types.SegmentID, named int, l tier2.Listing) error {
	span := uint64(last-first) + 1
	if span <= uint64(named)+maxIDsUnaccounted {
		return nil
	}
	keys := []string{}
	for _, ls := range [][]tier2.Listed{l.Segments, l.Lost, l.Reservations} {
		if n := len(ls); n > 0 && types.SegmentID(ls[n-1].Ref.ID) >= last-maxIDsUnaccounted {
			keys = append(keys, ls[n-1].Info.Key)
		}
	}
	return fmt.Errorf("%w: stream %d: ids %d to %d, %d of them named by tier 2; the highest comes from %v: "+
		"remove the key if no writer made it, then rerun restore", ErrImplausibleID, stream, first, last, named, keys)
}

// planSegments lists every segment id the restored stream takes, from the
// first the history or tier 2 holds to the highest the history, an object
// or the reservation names, and describes the cold ones from tier 2.
func (r *run) planSegments(ctx context.Context, stream types.StreamID, x *manifest.Index, l tier2.Listing, noHistory bool) ([]*entry, error) {
	hist := map[types.SegmentID]manifest.SegmentState{}
	var dropped types.SegmentID // highest id retention was deleting
	for _, st := range x.Segments() {
		if len(st.Tier2.PendingDeletes) > 0 {
			dropped = max(dropped, st.SegmentID)
			continue
		}
		hist[st.SegmentID] = st
	}
	var first, last types.SegmentID
	note := func(id types.SegmentID) {
		if first == 0 || id < first {
			first = id
		}
		last = max(last, id)
	}
	for id := range hist {
		note(id)
	}
	histFirst := first
	recordedLost := map[types.SegmentID]bool{}
	for _, o := range l.Lost {
		recordedLost[types.SegmentID(o.Ref.ID)] = true
	}
	objs := map[types.SegmentID]*tier2.Listed{}
	for i := range l.Segments {
		o := &l.Segments[i]
		id := types.SegmentID(o.Ref.ID)
		if id <= dropped || (histFirst != 0 && id < histFirst) {
			r.log.Warn("tier-2 segment object older than the stream's history left alone", "stream_id", uint64(stream), "key", o.Info.Key)
			continue
		}
		if recordedLost[id] {
			// An earlier restore accepted the id as lost and the history
			// went on past it: an object that appeared later is a writer
			// taken over's last upload, no part of the history
			// (docs/adr-fencing.md).
			r.log.Warn("tier-2 segment object of an id recorded lost left alone", "stream_id", uint64(stream), "key", o.Info.Key)
			continue
		}
		objs[id] = o
		note(id)
	}
	for _, o := range l.Lost {
		// An earlier restore accepted these ids as lost: taken for good,
		// whatever this restore's reservation window.
		if id := types.SegmentID(o.Ref.ID); id > dropped && (histFirst == 0 || id >= histFirst) {
			note(id)
		}
	}
	if noHistory && first > 1 {
		// Tier 2 holds no history at all, so nothing was ever retired
		// (retention puts each delete in the history before it deletes):
		// the ids below the lowest object held records that never
		// reached tier 2, lost like any other missing id.
		first = 1
	}
	if res := l.Reserved(); res > 0 {
		// A reservation the previous writer had in flight may have
		// landed after the listing: its ids are taken too. It reaches at
		// most that writer's window past the highest listed one, which
		// records it (this host's when it predates the record, and
		// never less: the writer may have restarted with another).
		window, err := r.cfg.Remote.ReserveWindow(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("stream %d: %w", stream, err)
		}
		window = max(window, r.cfg.ReserveSegments)
		res = min(res+types.SegmentID(window), types.MaxSegmentID)
		if first == 0 {
			first = dropped + 1
		}
		last = max(last, res)
	}
	if first == 0 {
		return nil, nil
	}
	if err := checkSpan(stream, first, last, len(hist)+len(objs)+len(l.Lost), l); err != nil {
		return nil, err
	}
	entries := make([]*entry, 0, last-first+1)
	for id := first; id <= last; id++ {
		st, ok := hist[id]
		entries = append(entries, &entry{id: id, st: st, inHist: ok, obj: objs[id]})
	}
	if err := r.describeCold(ctx, stream, entries); err != nil {
		return nil, err
	}
	if err := r.boundLost(stream, entries); err != nil {
		return nil, err
	}
	if err := r.recordedLost(ctx, stream, entries, l); err != nil {
		return nil, err
	}
	return entries, checkChain(stream, entries)
}

// checkChain checks that the entries, cold and lost, form one chain: each
// starts at the record and offset where the one before ends (a recorded
// lost stub that no longer fits what tier 2 holds is refused here, not
// when serve opens the stream).
func checkChain(stream types.StreamID, entries []*entry) error {
	for i := 1; i < len(entries); i++ {
		p, e := entries[i-1], entries[i]
		rec, off := p.h.BaseRecord+p.f.RecordCount, p.h.BaseOffset+p.f.DurableBytes-segment.HeaderSize
		if e.h.BaseRecord != rec || e.h.BaseOffset != off {
			return fmt.Errorf("%w: stream %d: segment %d starts at record %d offset %d, segment %d ends at record %d offset %d",
				ErrSegmentMismatch, stream, e.id, e.h.BaseRecord, e.h.BaseOffset, p.id, rec, off)
		}
	}
	return nil
}

// recordedLost gives the lost entries whose stub tier 2 holds (an earlier
// restore of the prefix accepted their loss) that stub: the history every
// node sees is the one the first restore laid out.
func (r *run) recordedLost(ctx context.Context, stream types.StreamID, entries []*entry, l tier2.Listing) error {
	byID := map[types.SegmentID]*entry{}
	for _, e := range entries {
		if e.obj == nil {
			byID[e.id] = e
		}
	}
	for _, o := range l.Lost {
		e := byID[types.SegmentID(o.Ref.ID)]
		if e == nil {
			continue
		}
		b, _, err := r.cfg.Remote.Fetch(ctx, o.Info.Key, tier2.Expect{ETag: o.Info.ETag})
		if err != nil {
			return fmt.Errorf("stream %d: read the lost stub %s: %w", stream, o.Info.Key, err)
		}
		h, f, err := core.DecodeLostStub(b, stream, r.cfg.SegmentSize)
		if err != nil || h.SegmentID != e.id {
			return fmt.Errorf("%w: stream %d: %s: %v (segment %d)", ErrSegmentMismatch, stream, o.Info.Key, err, h.SegmentID)
		}
		e.h, e.f, e.recorded = h, f, true
	}
	return nil
}

// recordLost stores in tier 2 the stub of every lost entry it does not
// hold yet, so that read replicas follow the stream past them
// (docs/tiering.md#read-replicas). Each is a tier-2 mutation, made only
// while this node still holds the writer record (docs/adr-fencing.md):
// after another takeover, the new writer's restore decides what is lost
// from what tier 2 holds then, and this one fails with ErrPrefixClaimed.
func (r *run) recordLost(ctx context.Context, stream types.StreamID, entries []*entry) error {
	for _, e := range entries {
		if e.obj != nil || e.recorded {
			continue
		}
		if _, err := coordinator.HoldsPrefix(ctx, r.cfg.FS, r.cfg.DataDir, r.cfg.Remote); err != nil {
			return fmt.Errorf("stream %d: record lost segment %d in tier 2: %w", stream, e.id, err)
		}
		k := types.SegmentKey{Stream: stream, Segment: e.id}
		if _, err := r.cfg.Remote.RecordLost(ctx, k, core.EncodeLostStub(e.h, e.f)); err != nil {
			return fmt.Errorf("stream %d: record lost segment %d in tier 2: %w", stream, e.id, err)
		}
	}
	return nil
}

// describeCold reads the header and footer of every cold entry from its
// artifact's end (ranged reads, no segment bytes) and checks them against
// the history.
func (r *run) describeCold(ctx context.Context, stream types.StreamID, entries []*entry) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Concurrency)
	for _, e := range entries {
		if e.obj == nil {
			continue
		}
		g.Go(func() error {
			h, f, err := r.describe(ctx, types.SegmentKey{Stream: stream, Segment: e.id}, e.obj)
			if err != nil {
				return fmt.Errorf("stream %d: describe segment %d (%s): %w", stream, e.id, e.obj.Info.Key, err)
			}
			switch {
			case h.StreamID != stream || h.SegmentID != e.id || f.SegmentID != e.id:
				return fmt.Errorf("%w: %s holds segment %d of stream %d", ErrSegmentMismatch, e.obj.Info.Key, h.SegmentID, h.StreamID)
			case e.inHist && e.st.BaseOffset != h.BaseOffset:
				return fmt.Errorf("%w: %s starts at offset %d, the history says %d", ErrSegmentMismatch, e.obj.Info.Key, h.BaseOffset, e.st.BaseOffset)
			case e.inHist && e.st.Sealed && (uint64(e.st.SegmentCRC64) != f.SegmentCRC || e.st.DurableBytes != f.DurableBytes):
				return fmt.Errorf("%w: %s holds %d bytes with segment_crc64 %016x, the history sealed %d bytes with %s",
					ErrSegmentMismatch, e.obj.Info.Key, f.DurableBytes, f.SegmentCRC, e.st.DurableBytes, e.st.SegmentCRC64)
			}
			e.h, e.f = h, f
			return nil
		})
	}
	return g.Wait()
}

func (r *run) describe(ctx context.Context, k types.SegmentKey, obj *tier2.Listed) (segment.Header, segment.Footer, error) {
	return Describe(ctx, r.cfg.Remote, k, obj.Info.ETag)
}

// Describe reads the header and footer of segment k from the end of its
// tier-2 artifact with etag (ranged reads of the seek table and the
// trailer; no segment bytes). A read replica follows segments with it.
func Describe(ctx context.Context, remote *tier2.Store, k types.SegmentKey, etag string) (segment.Header, segment.Footer, error) {
	rr, err := remote.OpenSegmentRange(ctx, k, tier2.Expect{ETag: etag})
	if err != nil {
		return segment.Header{}, segment.Footer{}, err
	}
	a, err := tier1.OpenReaderAt(rr, rr.Size(), remote.Layout().SegmentObjectKey(k))
	if err != nil {
		return segment.Header{}, segment.Footer{}, err
	}
	defer a.Close()
	h, err := a.Header()
	if err != nil {
		return h, segment.Footer{}, err
	}
	f, err := a.Footer()
	return h, f, err
}

// boundLost gives every lost entry a header and footer: runs of lost
// segments between two cold ones take exactly the records and bytes
// between them; a run after the last cold segment (or with none) takes
// the bytes the history recorded and no records, since how many the lost
// node wrote there is unknown. Its ids stay taken either way.
func (r *run) boundLost(stream types.StreamID, entries []*entry) error {
	var run []*entry
	var recEnd, offEnd uint64
	started := false
	for _, e := range entries {
		if e.obj == nil {
			run = append(run, e)
			continue
		}
		if len(run) > 0 {
			startRec, startOff := recEnd, offEnd
			if !started {
				startRec, startOff = e.h.BaseRecord, e.h.BaseOffset
				if b, ok := run[0].knownBase(); ok {
					startOff = b
				} else if run[0].id == 1 {
					startOff = 0 // the stream's first segment starts it
				}
				if startOff == 0 {
					startRec = 0 // the stream's first segment
				}
			}
			if err := r.bound(stream, run, startRec, startOff, e.h.BaseRecord, e.h.BaseOffset, true); err != nil {
				return err
			}
			run = run[:0]
		} else if started && (e.h.BaseRecord != recEnd || e.h.BaseOffset != offEnd) {
			return fmt.Errorf("%w: stream %d: segment %d starts at record %d offset %d, segment %d ends at record %d offset %d",
				ErrSegmentMismatch, stream, e.id, e.h.BaseRecord, e.h.BaseOffset, e.id-1, recEnd, offEnd)
		}
		started = true
		recEnd, offEnd = e.h.BaseRecord+e.f.RecordCount, e.h.BaseOffset+e.f.DurableBytes-segment.HeaderSize
	}
	if len(run) > 0 {
		if !started {
			if b, ok := run[0].knownBase(); ok {
				offEnd = b
			}
		}
		return r.bound(stream, run, recEnd, offEnd, 0, 0, false)
	}
	return nil
}

// bound lays a run of lost entries over [startRec, endRec) records and
// [startOff, endOff) bytes (with hasEnd; without, the bytes the history
// recorded and no records).
func (r *run) bound(stream types.StreamID, run []*entry, startRec, startOff, endRec, endOff uint64, hasEnd bool) error {
	maxSpan := uint64(segment.DataEnd(r.cfg.SegmentSize) - segment.HeaderSize)
	if hasEnd && (endRec < startRec || endOff < startOff) {
		return fmt.Errorf("%w: stream %d: segment %d starts at record %d offset %d, before the end of segment %d (record %d offset %d)",
			ErrSegmentMismatch, stream, run[len(run)-1].id+1, endRec, endOff, run[0].id-1, startRec, startOff)
	}
	base, rec := startOff, startRec
	var records uint64
	if hasEnd {
		records = endRec - startRec
	}
	for i, e := range run {
		if b, ok := e.knownBase(); ok && b >= base && (!hasEnd || b <= endOff) {
			base = b
		}
		// The next anchor: the next entry whose base the history knows,
		// or the run's end.
		anchor, anchored := endOff, hasEnd
		for _, n := range run[i+1:] {
			if b, ok := n.knownBase(); ok && b >= base && (!hasEnd || b <= endOff) {
				anchor, anchored = b, true
				break
			}
		}
		var span uint64
		switch {
		case anchored:
			span = min(anchor-base, maxSpan)
		case e.inHist && e.st.Sealed:
			span = e.st.DurableBytes - segment.HeaderSize
		}
		if span > maxSpan {
			return fmt.Errorf("%w: stream %d: lost segment %d would span %d bytes, over a segment's %d", ErrSegmentMismatch, stream, e.id, span, maxSpan)
		}
		n := min(records, span/uint64(segment.RecordSpan(1)))
		if i == len(run)-1 {
			n = records
		}
		e.h = segment.Header{StreamID: stream, SegmentID: e.id, BaseOffset: base, BaseRecord: rec}
		e.f = segment.Footer{Flags: segment.FlagSealed, SegmentID: e.id, BaseRecord: rec, RecordCount: n,
			DurableBytes: segment.HeaderSize + span}
		if n > 0 {
			e.f.LastRecordID = types.MakeRecordID(e.id, segment.HeaderSize)
		}
		if e.inHist && e.st.Sealed && e.st.DurableBytes == e.f.DurableBytes {
			e.f.SegmentCRC = uint64(e.st.SegmentCRC64)
		}
		if _, err := segment.DecodeFooter(encodeFooter(e.f, true), r.cfg.SegmentSize); err != nil {
			return fmt.Errorf("%w: stream %d: lost segment %d: %w", ErrSegmentMismatch, stream, e.id, err)
		}
		base, rec, records = base+span, rec+n, records-n
	}
	if hasEnd && base != endOff {
		return fmt.Errorf("%w: stream %d: lost segments %d..%d cannot span offsets %d..%d", ErrSegmentMismatch, stream, run[0].id, run[len(run)-1].id, startOff, endOff)
	}
	return nil
}

func encodeFooter(f segment.Footer, lost bool) []byte {
	if lost {
		f.Flags |= segment.FlagLossAccepted
	}
	b := make([]byte, segment.FooterSize)
	f.Encode(b)
	return b
}

// records are the manifest records that bring the history up to what
// the restored directory holds: segments it lacks are opened and sealed,
// cold ones recorded as uploaded with no local copy. Lost ones keep what
// the history says of them (the engine reports them from their stubs).
func records(entries []*entry) []manifest.Record {
	var out []manifest.Record
	for _, e := range entries {
		opened, sealed := core.SegmentRecords(e.h, e.f)
		tier0, tier1 := true, false
		switch {
		case !e.inHist:
			out = append(out, opened, sealed)
		case !e.st.Sealed:
			out = append(out, sealed)
			fallthrough
		default:
			tier0, tier1 = e.st.Tier0, e.st.Tier1.State == manifest.Tier1Compressed
		}
		if e.obj == nil {
			continue
		}
		hdr := manifest.Header{SegmentID: e.id, TimestampMS: uint64(max(e.obj.Info.ModTime.UnixMilli(), 0))}
		if !e.inHist || e.st.Tier2.Key != e.obj.Info.Key || e.st.Tier2.ETag != e.obj.Info.ETag {
			out = append(out, manifest.UploadDone{Header: hdr, Key: e.obj.Info.Key, ETag: e.obj.Info.ETag})
		}
		for _, evict := range []bool{tier0, tier1} {
			if evict {
				out = append(out, manifest.LocalEvicted{Header: hdr})
			}
		}
	}
	return out
}

// lostIDs are the entries restore records as lost.
func lostIDs(entries []*entry) []types.SegmentID {
	var out []types.SegmentID
	for _, e := range entries {
		if e.obj == nil {
			out = append(out, e.id)
		}
	}
	return slices.Clip(out)
}
