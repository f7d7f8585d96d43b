// Package logmodel is the sequential specification of one append-only
// stream for the porcupine linearizability checker: the fault runs of the
// replicated mode record every client's appends and linearizable reads
// (with their call and return times) and check that some order of them,
// consistent with real time, explains every answer.
//
// The state is the record count and the last payload. An append adds one
// record; a read from ordinal From that returned N records (the last one
// Last) and reached the end says the stream held exactly From+N records
// ending with Last. An append whose outcome the client could not learn is
// recorded with Unknown set and a return time after every other
// operation: the checker may then place it anywhere after its call, or at
// the very end (where it changes nothing any read saw).
package logmodel

import (
	"fmt"
	"hash/fnv"

	"github.com/anishathalye/porcupine"
)

// Input is one operation's request.
type Input struct {
	Stream uint64
	// Append is set for an append of Payload; else the operation is a read
	// starting at ordinal From.
	Append  bool
	Payload string
	From    uint64
}

// Output is one operation's answer.
type Output struct {
	// Unknown: an append whose outcome is not known.
	Unknown bool
	// N records read, the last one Last; End says the read reached the
	// end of the stream (a read that did not is checked only for N).
	N    uint64
	Last string
	End  bool
}

type state struct {
	count uint64
	last  string
}

// Model is the stream's specification, partitioned by stream.
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[uint64][]porcupine.Operation{}
		var order []uint64
		for _, op := range h {
			s := op.Input.(Input).Stream
			if _, ok := by[s]; !ok {
				order = append(order, s)
			}
			by[s] = append(by[s], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, s := range order {
			out = append(out, by[s])
		}
		return out
	},
	Init: func() any { return state{} },
	Step: func(st, in, out any) (bool, any) {
		s, i, o := st.(state), in.(Input), out.(Output)
		if i.Append {
			return true, state{count: s.count + 1, last: i.Payload}
		}
		switch {
		case o.N == 0:
			// Nothing at or after From: the stream holds at most From.
			return s.count <= i.From, s
		case !o.End:
			return s.count >= i.From+o.N, s
		default:
			return s.count == i.From+o.N && s.last == o.Last, s
		}
	},
	Equal: func(a, b any) bool { return a.(state) == b.(state) },
	// Hash lets the checker find states it has seen at once: without it,
	// histories of a few thousand operations take minutes.
	Hash: func(st any) uint64 {
		s := st.(state)
		h := fnv.New64a()
		_, _ = h.Write([]byte(s.last))
		return h.Sum64() ^ s.count*0x9e3779b97f4a7c15
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(Input), out.(Output)
		if i.Append {
			if o.Unknown {
				return fmt.Sprintf("append(%d, %s) -> ?", i.Stream, i.Payload)
			}
			return fmt.Sprintf("append(%d, %s)", i.Stream, i.Payload)
		}
		return fmt.Sprintf("read(%d, from %d) -> %d records, last %q, end %v", i.Stream, i.From, o.N, o.Last, o.End)
	},
}
