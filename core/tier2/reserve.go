package tier2

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aof2/aof2/core/types"
)

// Segment-id reservations (docs/adr-restore.md#never-reuse-an-id-the-lost-node-handed-out).
// A writer activates a segment id only once tier 2 holds a reservation
// object covering it, so that a restore from tier 2 alone knows every id
// the lost node may have handed out, including ids of segments that never
// reached tier 2. A reservation is a small object created if_absent and
// never replaced: reservations only ever grow, and one that a fenced or
// crashed writer made covers more ids than were used, which costs ids,
// not correctness.

// Reserve records in tier 2 that the stream's segment ids up to upto may
// take records. Creating a reservation that already exists is success.
// window is the writer's tier2.reserve_segments: its next reservation
// reaches at most window ids past this one, and a restore that finds this
// one the highest counts that far (ReserveWindow). It is metadata, not
// part of the body, so that two writers' reservations of one id stay the
// same bytes.
func (s *Store) Reserve(ctx context.Context, stream types.StreamID, upto types.SegmentID, window int) (Uploaded, error) {
	if upto == 0 {
		return Uploaded{}, fmt.Errorf("tier2 reserve: stream %d: segment id 0 is never used", stream)
	}
	if window < 1 {
		return Uploaded{}, fmt.Errorf("tier2 reserve: stream %d: window %d, want at least 1", stream, window)
	}
	ref := Ref{Kind: KindReservation, Stream: stream, ID: uint64(upto)}
	body := fmt.Appendf(nil, "aof2 segment reservation: stream %d, segment ids up to %d\n", stream, upto)
	md := map[string]string{MetaReserveWindow: strconv.Itoa(window)}
	return s.upload(ctx, Upload{Key: s.layout.Key(ref), Data: body, Metadata: md}, ref, SegmentInfo{})
}

// ReserveWindow is the window (Reserve) of the listing's highest
// reservation, read from the object: 0 when the listing holds none or the
// reservation was stored before windows were recorded.
func (s *Store) ReserveWindow(ctx context.Context, l Listing) (int, error) {
	n := len(l.Reservations)
	if n == 0 {
		return 0, nil
	}
	key := l.Reservations[n-1].Info.Key
	info, err := s.Stat(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("tier2: reservation %s: %w", key, err)
	}
	m, err := ParseMetadata(info.Metadata)
	if err != nil {
		return 0, fmt.Errorf("tier2: reservation %s: %w", key, err)
	}
	if m.ReserveWindow > uint64(types.MaxSegmentID) {
		return 0, fmt.Errorf("tier2: reservation %s: window %d: %w", key, m.ReserveWindow, types.ErrCorrupt)
	}
	return int(m.ReserveWindow), nil
}

// Reserved is the highest reservation of a listing (0: none).
func (l Listing) Reserved() types.SegmentID {
	if n := len(l.Reservations); n > 0 {
		return types.SegmentID(l.Reservations[n-1].Ref.ID)
	}
	return 0
}

// RecordLost stores in tier 2 that segment k will never be there: stub
// is its cold stub with the loss accepted (core.EncodeStub), as the
// restore that accepted it wrote it locally. Created if_absent and never
// replaced; storing the same stub again is success. Read replicas follow
// a stream past such an id (docs/tiering.md#read-replicas).
func (s *Store) RecordLost(ctx context.Context, k types.SegmentKey, stub []byte) (Uploaded, error) {
	ref := Ref{Kind: KindLost, Stream: k.Stream, ID: uint64(k.Segment)}
	return s.upload(ctx, Upload{Key: s.layout.Key(ref), Data: stub}, ref, SegmentInfo{})
}
