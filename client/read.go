package client

import (
	"context"
	"math"
	"strconv"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/api/wire"
)

// Position says where a read or tail starts.
type Position struct {
	p *aof2v1.Position
}

// AtID starts at the record with this id (a record boundary).
func AtID(id RecordID) Position {
	return Position{&aof2v1.Position{Start: &aof2v1.Position_RecordId{RecordId: uint64(id)}}}
}

// AtOrdinal starts at the record with this ordinal; one past the last
// record is allowed (nothing to read yet).
func AtOrdinal(n uint64) Position {
	return Position{&aof2v1.Position{Start: &aof2v1.Position_Ordinal{Ordinal: n}}}
}

// AtStart starts at the oldest record the stream keeps. The zero Position
// means the same.
func AtStart() Position {
	return Position{&aof2v1.Position{Start: &aof2v1.Position_FromStart{FromStart: true}}}
}

// ID returns the record id the position names, if it names one.
func (p Position) ID() (RecordID, bool) {
	v, ok := p.p.GetStart().(*aof2v1.Position_RecordId)
	if !ok {
		return 0, false
	}
	return RecordID(v.RecordId), true
}

// Ordinal returns the ordinal the position names, if it names one.
func (p Position) Ordinal() (uint64, bool) {
	v, ok := p.p.GetStart().(*aof2v1.Position_Ordinal)
	if !ok {
		return 0, false
	}
	return v.Ordinal, true
}

func (p Position) String() string {
	if id, ok := p.ID(); ok {
		return "id " + id.String()
	}
	if n, ok := p.Ordinal(); ok {
		return "ordinal " + strconv.FormatUint(n, 10)
	}
	return "start"
}

// ReadResult is one Read's records and where to continue.
type ReadResult struct {
	Records []Record
	// Next is where the following Read continues.
	Next Position
	// End reports that the read reached the last appended record.
	End bool
}

// ReadOption adjusts one Read.
type ReadOption func(*readOptions)

type readOptions struct {
	noWaitHydration bool
	consistency     string
}

// Linearizable makes a Read on a cluster see every append acknowledged
// before it started: the leader answers it after confirming with a
// majority that it still leads (the client follows NOT_LEADER there).
// Without it a node answers from what it has applied, which on a follower
// may lag. A single host is linearizable either way.
func Linearizable() ReadOption {
	return func(o *readOptions) { o.consistency = wire.ConsistencyLinearizable }
}

// NoWaitHydration makes a Read not wait for a segment that was moved to a
// colder tier: it returns the records before that segment, or, when there
// are none, fails with a *WouldBlockError of kind Hydration
// (errors.Is(err, types.ErrWouldBlock), types.KindOf(err) ==
// types.Hydration) carrying the delay the host asks for. The host hydrates
// the segment in the background meanwhile, so a Read retried after the
// delay finds it; Read does not retry by itself.
func NoWaitHydration() ReadOption { return func(o *readOptions) { o.noWaitHydration = true } }

// Read returns up to limit records of stream from a position (limit <= 0
// means the host's default, 1000; the host caps it at 100000), and at most
// the host's limits.read_default_bytes of payload (4 MiB by default), or
// one larger record alone; a busy host may return fewer. Continue from
// ReadResult.Next until End. It never waits for new records (use Tail for
// that); it waits for a segment in a colder tier to be hydrated, and for
// room in the host's read budget, within ctx, unless NoWaitHydration is
// given (which concerns hydration only).
func (c *Client) Read(ctx context.Context, stream StreamID, from Position, limit int, opts ...ReadOption) (ReadResult, error) {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	n := uint32(min(max(limit, 0), math.MaxUint32))
	resp, err := c.log.Read(ctx, &aof2v1.ReadRequest{StreamId: uint64(stream), Start: from.p, MaxRecords: n, NoWaitHydration: o.noWaitHydration, Consistency: o.consistency})
	if err != nil {
		return ReadResult{}, fromStatus(err)
	}
	res := ReadResult{Records: make([]Record, len(resp.GetRecords())), Next: Position{resp.GetNext()}, End: resp.GetEnd()}
	for i, r := range resp.GetRecords() {
		res.Records[i] = fromStored(r)
	}
	return res, nil
}

func fromStored(r *aof2v1.StoredRecord) Record {
	return Record{ID: RecordID(r.GetId()), Ordinal: r.GetOrdinal(), Timestamp: r.GetTimestampUnixNano(), ExtID: r.GetExtId(), Payload: r.GetPayload()}
}
