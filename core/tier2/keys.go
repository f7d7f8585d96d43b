package tier2

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// Kind is what a tier-2 object holds.
type Kind uint8

// Object kinds.
const (
	// KindSegment is a sealed segment compressed into the seekable zstd
	// format (a tier-1 artifact): <segment_id:020>.seg.zst.
	KindSegment Kind = iota + 1
	// KindManifestChunk is a sealed manifest log chunk: <chunk_index:020>.mlog.
	KindManifestChunk
	// KindSnapshot is a manifest snapshot: <snapshot_id:020>.snap, beside
	// the chunks.
	KindSnapshot
	// KindReservation reserves a stream's segment ids up to its id:
	// reservations/<segment_id:020>.rsv (docs/adr-restore.md).
	KindReservation
	// KindLost records that a segment id holds no segment tier 2 will
	// ever have: the cold stub a restore wrote for it, with its loss
	// accepted (lost/<segment_id:020>.lost), so that read replicas follow
	// the stream past it (docs/tiering.md#read-replicas).
	KindLost
)

func (k Kind) String() string {
	switch k {
	case KindSegment:
		return "segment"
	case KindManifestChunk:
		return "manifest_chunk"
	case KindSnapshot:
		return "snapshot"
	case KindReservation:
		return "reservation"
	case KindLost:
		return "lost"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// File name suffixes and directory names of the key layout (docs/formats.md#tier-2-keys-and-object-metadata).
const (
	SegmentSuffix     = ".seg.zst"
	ChunkSuffix       = ".mlog"
	SnapshotSuffix    = ".snap"
	ReservationSuffix = ".rsv"
	LostSuffix        = ".lost"
	streamsDir        = "streams/"
	segmentsDir       = "segments/"
	manifestDir       = "manifest/"
	reservationsDir   = "reservations/"
	lostDir           = "lost/"
	idDigits          = 20
)

// Ref names one object by identity rather than by key.
type Ref struct {
	Kind   Kind
	Stream types.StreamID
	// ID is the segment id, the manifest chunk index or the snapshot id.
	ID uint64
}

// Layout maps object identities to keys under an optional prefix:
//
//	<prefix>/streams/<stream_id>/segments/<segment_id:020>.seg.zst
//	<prefix>/streams/<stream_id>/manifest/<chunk_index:020>.mlog
//	<prefix>/streams/<stream_id>/manifest/<snapshot_id:020>.snap
//	<prefix>/streams/<stream_id>/reservations/<segment_id:020>.rsv
//	<prefix>/streams/<stream_id>/lost/<segment_id:020>.lost
//
// Stream ids are plain decimal (as in the local data directory), the
// other ids zero-padded to 20 digits so that byte order is numeric order
// and a List returns segments and chunks oldest first.
type Layout struct {
	prefix string // "" or "<prefix>/"
}

// NewLayout validates prefix (empty, or a key prefix such as "prod/aof2",
// with or without a trailing '/').
func NewLayout(prefix string) (Layout, error) {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		if prefix != "" {
			return Layout{}, fmt.Errorf("%w: prefix %q", ErrInvalidKey, prefix)
		}
		return Layout{}, nil
	}
	if err := pluginapi.ValidateKey(p); err != nil {
		return Layout{}, fmt.Errorf("%w: prefix %q: %w", ErrInvalidKey, prefix, err)
	}
	if len(p)+1+len(longestKey) > pluginapi.MaxKeyLength {
		return Layout{}, fmt.Errorf("%w: prefix %q leaves no room for object keys", ErrInvalidKey, prefix)
	}
	return Layout{prefix: p + "/"}, nil
}

// longestKey is the longest key the layout builds below the prefix.
var longestKey = "streams/18446744073709551615/segments/18446744073709551615.seg.zst"

// Prefix is the configured prefix, with its trailing '/' ("" when none).
func (l Layout) Prefix() string { return l.prefix }

// StreamPrefix is the List prefix of every object of a stream.
func (l Layout) StreamPrefix(stream types.StreamID) string {
	return l.prefix + streamsDir + strconv.FormatUint(uint64(stream), 10) + "/"
}

// SegmentObjectKey is the object key of a segment's artifact.
func (l Layout) SegmentObjectKey(k types.SegmentKey) string {
	return l.Key(Ref{Kind: KindSegment, Stream: k.Stream, ID: uint64(k.Segment)})
}

// ManifestChunkKey is the key of a sealed manifest chunk.
func (l Layout) ManifestChunkKey(stream types.StreamID, chunk uint64) string {
	return l.Key(Ref{Kind: KindManifestChunk, Stream: stream, ID: chunk})
}

// SnapshotKey is the key of a manifest snapshot.
func (l Layout) SnapshotKey(stream types.StreamID, snapshot uint64) string {
	return l.Key(Ref{Kind: KindSnapshot, Stream: stream, ID: snapshot})
}

// ReservationKey is the key of the reservation of a stream's segment ids
// up to upto.
func (l Layout) ReservationKey(stream types.StreamID, upto types.SegmentID) string {
	return l.Key(Ref{Kind: KindReservation, Stream: stream, ID: uint64(upto)})
}

// LostKey is the key of the record that segment k is lost for good.
func (l Layout) LostKey(k types.SegmentKey) string {
	return l.Key(Ref{Kind: KindLost, Stream: k.Stream, ID: uint64(k.Segment)})
}

// Key builds the key of ref; an unknown kind yields "".
func (l Layout) Key(ref Ref) string {
	var dir, suffix string
	switch ref.Kind {
	case KindSegment:
		dir, suffix = segmentsDir, SegmentSuffix
	case KindManifestChunk:
		dir, suffix = manifestDir, ChunkSuffix
	case KindSnapshot:
		dir, suffix = manifestDir, SnapshotSuffix
	case KindReservation:
		dir, suffix = reservationsDir, ReservationSuffix
	case KindLost:
		dir, suffix = lostDir, LostSuffix
	default:
		return ""
	}
	return fmt.Sprintf("%s%s%d/%s%020d%s", l.prefix, streamsDir, ref.Stream, dir, ref.ID, suffix)
}

// Parse maps a key back to the object it names. A key outside the
// layout (another prefix, an unknown name, a non-canonical number, a
// segment id over 32 bits) fails with an error matching ErrUnknownKey:
// reconciliation reports such objects and never deletes them.
func (l Layout) Parse(key string) (Ref, error) {
	ref, reason := l.parse(key)
	if reason != "" {
		return Ref{}, &UnknownKeyError{Key: key, Reason: reason}
	}
	return ref, nil
}

func (l Layout) parse(key string) (Ref, string) {
	rest, ok := strings.CutPrefix(key, l.prefix)
	if !ok {
		return Ref{}, "outside the prefix " + strconv.Quote(l.prefix)
	}
	rest, ok = strings.CutPrefix(rest, streamsDir)
	if !ok {
		return Ref{}, "not under " + streamsDir
	}
	streamPart, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return Ref{}, "no stream directory"
	}
	stream, ok := parseDecimal(streamPart)
	if !ok {
		return Ref{}, "stream id is not a canonical decimal u64"
	}
	var kind Kind
	var name string
	switch {
	case strings.HasPrefix(rest, segmentsDir):
		name = rest[len(segmentsDir):]
		kind = KindSegment
		name, ok = strings.CutSuffix(name, SegmentSuffix)
	case strings.HasPrefix(rest, manifestDir):
		name = rest[len(manifestDir):]
		if n, isChunk := strings.CutSuffix(name, ChunkSuffix); isChunk {
			kind, name, ok = KindManifestChunk, n, true
		} else {
			kind = KindSnapshot
			name, ok = strings.CutSuffix(name, SnapshotSuffix)
		}
	case strings.HasPrefix(rest, reservationsDir):
		kind = KindReservation
		name, ok = strings.CutSuffix(rest[len(reservationsDir):], ReservationSuffix)
	case strings.HasPrefix(rest, lostDir):
		kind = KindLost
		name, ok = strings.CutSuffix(rest[len(lostDir):], LostSuffix)
	default:
		return Ref{}, "unknown directory under the stream"
	}
	if !ok {
		return Ref{}, "unknown file name suffix"
	}
	id, ok := parsePadded(name)
	if !ok {
		return Ref{}, "id is not 20 decimal digits of a u64"
	}
	if (kind == KindSegment || kind == KindReservation || kind == KindLost) && id > math.MaxUint32 {
		return Ref{}, "segment id does not fit in 32 bits"
	}
	return Ref{Kind: kind, Stream: types.StreamID(stream), ID: id}, ""
}

// parseDecimal accepts the canonical decimal form of a u64: digits only,
// no sign, no leading zero (except "0" itself).
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') || !allDigits(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// parsePadded accepts exactly 20 decimal digits of a u64.
func parsePadded(s string) (uint64, bool) {
	if len(s) != idDigits || !allDigits(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
