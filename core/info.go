package core

// StreamInfo is a point-in-time summary of a stream for clients and
// operators.
type StreamInfo struct {
	ID StreamID
	// Records is how many records were appended; DurableRecords how many of
	// them are durable (acknowledged by Flush or a sync round).
	Records, DurableRecords uint64
	// FirstOrdinal is the ordinal of the oldest record still kept (retention
	// drops whole segments from the head).
	FirstOrdinal uint64
	// Bytes is the stream position after the last appended record (record
	// framing included); DurableBytes the same for durable records.
	Bytes, DurableBytes uint64
	// DurableMark is the RecordID-shaped mark before which every record is
	// durable.
	DurableMark RecordID
	// Segments counts segments in the catalog; Resident those whose tier-0
	// file is present; Sealed those with a footer.
	Segments, Resident, Sealed int
	// LastExtID is the ext_id of the newest record (0 when none carries
	// one); CoordinatorWatermark the watermark the next seal will carry.
	LastExtID, CoordinatorWatermark uint64
	// Prepared is the id of the next segment when its file is prepared
	// and the id reserved by the durable mark (0: none yet): the next
	// rollover takes it without waiting.
	Prepared SegmentID
	// Failed is the error that stopped the stream, if any; Refused says
	// why appends are refused (the stream needs a restore), if they are.
	Failed, Refused error
}

// Info summarises the stream.
func (s *Stream) Info() StreamInfo {
	s.mu.Lock()
	in := StreamInfo{ID: s.id, Records: s.mu.records, Bytes: s.mu.written, Failed: s.mu.failed, Refused: s.mu.refused, CoordinatorWatermark: s.mu.watermark}
	in.LastExtID = s.lastExtLocked()
	if s.mu.next != nil {
		in.Prepared = s.mu.nextID
	}
	s.mu.Unlock()
	// Under the node WAL a record is durable once in the WAL or in its
	// synced segment, whichever came first.
	in.DurableRecords = max(s.durableRecs.Load(), s.walRecs.Load())
	in.DurableBytes = max(s.durablePos.Load(), s.walPos.Load())
	in.DurableMark = RecordID(max(s.durableMark.Load(), s.walMark.Load()))
	cat := s.cat.Load()
	in.Segments = len(cat.segs)
	for i, g := range cat.segs {
		if i == 0 {
			in.FirstOrdinal = g.baseRecord
		}
		if g.resident.Load() {
			in.Resident++
		}
		if g.footer.Load() != nil {
			in.Sealed++
		}
	}
	return in
}

// lastExtLocked is the ext_id of the newest record: the last one appended
// to an unsealed segment, else the last intact one before a damaged
// tail's damage, else the newest footer's.
func (s *Stream) lastExtLocked() uint64 {
	for _, g := range []*seg{s.mu.active, s.mu.sealing} {
		if g != nil && g.w != nil && g.w.Count() > 0 {
			_, _, ext := g.w.Last()
			return ext
		}
	}
	segs := s.cat.Load().segs
	for i := len(segs) - 1; i >= 0; i-- {
		g := segs[i]
		if f := g.footer.Load(); f != nil {
			return f.ExtID
		}
		if d := g.damage; d != nil && !d.lost && d.lastExt != 0 {
			return d.lastExt
		}
	}
	return 0
}

// HoldsLastExt reports whether segment id is sealed with records that
// carry the stream's last ext_id (not 0): the newest batch appended with
// that ext_id has records in it. A cluster does not drop such a segment
// (docs/adr-replication.md, "Deletes in a cluster"): a replay of that
// batch counts its records in the store.
func (s *Stream) HoldsLastExt(id SegmentID) bool {
	g, _ := s.cat.Load().byID(id)
	if g == nil {
		return false
	}
	f := g.footer.Load()
	if f == nil || f.ExtID == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.ExtID == s.lastExtLocked()
}
