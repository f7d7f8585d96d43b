package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/aof2/aof2/core"
)

// Command kinds. A new kind gets a new number; numbers are never reused.
const (
	kindAppend kind = 1 // records for one stream
	kindSeal   kind = 2 // seal a stream's active segment
	kindMember kind = 3 // a node's client-facing address
	kindTier   kind = 4 // tier 2 holds a sealed segment (the leader uploaded it)
	kindDrop   kind = 5 // retention drops a stream's oldest segment; the leader deletes its object after
)

type kind uint8

// commandVersion is the first byte of every encoded command.
const commandVersion = 1

// maxCommandRecords bounds the records of one Append entry, so that a
// restart can find where a torn batch stopped by scanning at most this
// many records (fsm.go).
const maxCommandRecords = 4096

// ErrBadCommand is returned for an entry that does not decode: a
// damaged log or a newer node's command. Raft's own checksums do not
// cover the payload on every log store, so each command carries a CRC.
var ErrBadCommand = errors.New("cluster: bad command")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one record of an Append command.
type Record struct {
	Timestamp int64
	Payload   []byte
}

// command is one decoded Raft entry.
type command struct {
	kind    kind
	groups  []group        // kindAppend: the requests the leader gathered into the entry
	stream  core.StreamID  // kindSeal, kindTier, kindDrop
	segment core.SegmentID // kindSeal: the segment to seal if still active; 0: whichever is. kindTier: the segment uploaded. kindDrop: the segment dropped
	member  member         // kindMember
	object  object         // kindTier; kindDrop: its Key only
}

// object is a tier-2 object a TierMove entry records.
type object struct {
	Key, ETag string
}

// group is one request's records for one stream. An entry holds the
// requests that arrived while the entry before it was being committed
// (group commit), so that replication costs once per entry, not per
// request.
type group struct {
	stream  core.StreamID
	records []Record
}

// member names a node and the addresses its clients reach it on.
type member struct {
	ID   string
	Addr APIAddr
}

// APIAddr is where a node serves clients; either may be empty.
type APIAddr struct {
	GRPC, HTTP string
}

func appendCommand(stream core.StreamID, recs []Record) command {
	return command{kind: kindAppend, groups: []group{{stream: stream, records: recs}}}
}

// encode returns the command's bytes: version, kind, body, CRC-32C of
// everything before it.
func (c command) encode() []byte {
	n := 2 + binary.MaxVarintLen64 + 4
	for _, g := range c.groups {
		n += 3 * binary.MaxVarintLen64
		for _, r := range g.records {
			n += 2*binary.MaxVarintLen64 + len(r.Payload)
		}
	}
	n += len(c.member.ID) + len(c.member.Addr.GRPC) + len(c.member.Addr.HTTP) + len(c.object.Key) + len(c.object.ETag)
	b := make([]byte, 0, n+5*binary.MaxVarintLen64)
	b = append(b, commandVersion, byte(c.kind))
	switch c.kind {
	case kindAppend:
		b = binary.AppendUvarint(b, uint64(len(c.groups)))
		for _, g := range c.groups {
			b = binary.AppendUvarint(b, uint64(g.stream))
			b = binary.AppendUvarint(b, uint64(len(g.records)))
			var base int64
			if len(g.records) > 0 {
				base = g.records[0].Timestamp
			}
			b = binary.AppendVarint(b, base)
			for _, r := range g.records {
				b = binary.AppendVarint(b, r.Timestamp-base)
				b = binary.AppendUvarint(b, uint64(len(r.Payload)))
				b = append(b, r.Payload...)
			}
		}
	case kindSeal:
		b = binary.AppendUvarint(b, uint64(c.stream))
		b = binary.AppendUvarint(b, uint64(c.segment))
	case kindMember:
		b = appendString(b, c.member.ID)
		b = appendString(b, c.member.Addr.GRPC)
		b = appendString(b, c.member.Addr.HTTP)
	case kindTier:
		b = binary.AppendUvarint(b, uint64(c.stream))
		b = binary.AppendUvarint(b, uint64(c.segment))
		b = appendString(b, c.object.Key)
		b = appendString(b, c.object.ETag)
	case kindDrop:
		b = binary.AppendUvarint(b, uint64(c.stream))
		b = binary.AppendUvarint(b, uint64(c.segment))
		b = appendString(b, c.object.Key)
	}
	return c.sealBytes(b)
}

// sealBytes appends the CRC-32C of b.
func (command) sealBytes(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeCommand parses an entry. Payloads alias b.
func decodeCommand(b []byte) (command, error) {
	if len(b) < 6 {
		return command{}, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return command{}, fmt.Errorf("%w: checksum %08x, want %08x", ErrBadCommand, got, sum)
	}
	if body[0] != commandVersion {
		return command{}, fmt.Errorf("%w: version %d (this node reads %d)", ErrBadCommand, body[0], commandVersion)
	}
	d := decoder{b: body[2:]}
	c := command{kind: kind(body[1])}
	switch c.kind {
	case kindAppend:
		groups := d.uvarint()
		if groups == 0 || groups > maxCommandRecords {
			return command{}, fmt.Errorf("%w: append of %d groups", ErrBadCommand, groups)
		}
		total := uint64(0)
		for range groups {
			if d.err != nil {
				break
			}
			g := group{stream: core.StreamID(d.uvarint())}
			n := d.uvarint()
			if total += n; n == 0 || total > maxCommandRecords {
				return command{}, fmt.Errorf("%w: append of %d records (%d in the entry)", ErrBadCommand, n, total)
			}
			base := d.varint()
			g.records = make([]Record, 0, min(n, uint64(len(d.b))))
			for i := uint64(0); i < n && d.err == nil; i++ {
				delta := d.varint()
				g.records = append(g.records, Record{Timestamp: base + delta, Payload: d.bytes()})
			}
			c.groups = append(c.groups, g)
		}
	case kindSeal:
		c.stream = core.StreamID(d.uvarint())
		c.segment = core.SegmentID(d.uvarint())
	case kindMember:
		c.member.ID = string(d.bytes())
		c.member.Addr.GRPC = string(d.bytes())
		c.member.Addr.HTTP = string(d.bytes())
	case kindTier:
		c.stream = core.StreamID(d.uvarint())
		c.segment = core.SegmentID(d.uvarint())
		c.object.Key = string(d.bytes())
		c.object.ETag = string(d.bytes())
		if d.err == nil && c.object.Key == "" {
			d.err = errors.New("a tier move without an object key")
		}
	case kindDrop:
		c.stream = core.StreamID(d.uvarint())
		c.segment = core.SegmentID(d.uvarint())
		c.object.Key = string(d.bytes())
		if d.err == nil && c.object.Key == "" {
			d.err = errors.New("a drop without an object key")
		}
	default:
		return command{}, fmt.Errorf("%w: kind %d", ErrBadCommand, c.kind)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the body", len(d.b))
	}
	if d.err != nil {
		return command{}, fmt.Errorf("%w: kind %d: %w", ErrBadCommand, c.kind, d.err)
	}
	return c, nil
}

// decoder reads varints and length-prefixed bytes; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) || n > math.MaxInt32 {
		d.err = errShort
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}
