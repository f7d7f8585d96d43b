// Package wire holds the conventions of the AOF2 client API that the server
// (host/server) and the Go client (client) must agree on beyond the
// generated code in api/proto/aof2/v1: the error domain and metadata keys,
// how record ids are written as text, and WouldBlock kinds by name. It
// imports only core/types, so the client stays free of the engine.
package wire

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/aof2/aof2/core/types"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error the server
// returns.
const ErrorDomain = "aof2"

// ErrorInfo metadata keys.
const (
	// MetaKind is the WouldBlock kind (KindName) of a WOULD_BLOCK error.
	MetaKind = "kind"
	// MetaAppended is how many records of a failed append were appended
	// anyway (a prefix of the batch); absent when none were. Retrying such
	// an append duplicates them.
	MetaAppended = "appended"
	// MetaLastID is the id of the last record that a failed append did
	// append, in FormatRecordID form.
	MetaLastID = "last_id"
	// MetaStreamID is the stream a NEEDS_RESTORE error is about, decimal.
	MetaStreamID = "stream_id"
	// MetaLeaderID, MetaLeaderGRPC and MetaLeaderHTTP name a cluster's
	// leader in a NOT_LEADER error (empty while none is known).
	MetaLeaderID   = "leader_id"
	MetaLeaderGRPC = "leader_grpc"
	MetaLeaderHTTP = "leader_http"
)

// Read consistency values (ReadRequest.consistency, ?consistency=).
const (
	ConsistencyLocal        = "local"
	ConsistencyLinearizable = "linearizable"
)

// FormatRecordID writes an id as "<segment>:<offset>", the form the server
// emits everywhere ids are text (HTTP JSON, error metadata).
func FormatRecordID(id types.RecordID) string { return id.String() }

// ParseRecordID reads an id written either as FormatRecordID does or as the
// decimal uint64. Anything else (signs, spaces, hex, a part out of 32-bit
// range) is rejected with an error matching types.ErrInvalidRecordID.
func ParseRecordID(s string) (types.RecordID, error) {
	seg, off, ok := strings.Cut(s, ":")
	if !ok {
		v, err := parseDecimal(s, 64)
		if err != nil {
			return 0, malformedID(s)
		}
		return types.RecordID(v), nil
	}
	sv, err1 := parseDecimal(seg, 32)
	ov, err2 := parseDecimal(off, 32)
	if err1 != nil || err2 != nil {
		return 0, malformedID(s)
	}
	return types.MakeRecordID(types.SegmentID(sv), uint32(ov)), nil
}

func malformedID(s string) error {
	return fmt.Errorf("record id %q: want <segment>:<offset> with both parts below 2^32, or a decimal uint64: %w", s, types.ErrInvalidRecordID)
}

// ParseStreamID reads a stream id written as a decimal uint64.
func ParseStreamID(s string) (types.StreamID, error) {
	v, err := parseDecimal(s, 64)
	if err != nil {
		return 0, fmt.Errorf("stream id %q: want a decimal uint64", s)
	}
	return types.StreamID(v), nil
}

// parseDecimal accepts only ASCII digits: strconv.ParseUint alone would
// also take a leading "+" and underscores with base 0.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" || len(s) > 20 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseUint(s, 10, bits)
}

// kinds are the WouldBlock kinds in wire order.
var kinds = []types.Kind{types.Admission, types.Rollover, types.Hydration, types.Flush, types.Tail}

// KindName is the wire name of a WouldBlock kind ("flush", "admission", …).
func KindName(k types.Kind) string { return k.String() }

// ParseKind is the inverse of KindName.
func ParseKind(s string) (types.Kind, bool) {
	for _, k := range kinds {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}
