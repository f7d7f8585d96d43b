package server

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// Bounded decoding of appends: an Append (or AppendPipeline) request is
// refused when it has more than maxAnswerRecords records, and decoding
// all of them first would cost memory per record (a message of 1-byte
// records decodes into millions of Record messages). The codec decodes
// only the first maxAnswerRecords+1 records of such a request, which
// checkAnswerable then refuses.

// Wire paths to the records of each request.
var (
	appendRecordsPath   = []protowire.Number{2}    // AppendRequest.records
	pipelineRecordsPath = []protowire.Number{2, 2} // AppendPipelineRequest.append.records
)

// fullDecode holds the AppendStream messages being received (an
// *aof2v1.AppendRequest each): AppendStream has no cap on a message's
// records, and they are decoded whole.
var fullDecode sync.Map

// recvAppendStream receives one AppendStream message, decoded whole.
func recvAppendStream(ss grpc.ServerStream) (*aof2v1.AppendRequest, error) {
	req := new(aof2v1.AppendRequest)
	fullDecode.Store(req, struct{}{})
	defer fullDecode.Delete(req)
	if err := ss.RecvMsg(req); err != nil {
		return nil, err
	}
	return req, nil
}

// unmarshalBounded decodes the append requests with at most
// maxAnswerRecords+1 of their records; ok is false for other messages.
func unmarshalBounded(data mem.BufferSlice, v any) (ok bool, err error) {
	var path []protowire.Number
	switch m := v.(type) {
	case *aof2v1.AppendRequest:
		if _, whole := fullDecode.Load(m); whole {
			return false, nil
		}
		path = appendRecordsPath
	case *aof2v1.AppendPipelineRequest:
		path = pipelineRecordsPath
	default:
		return false, nil
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return true, proto.Unmarshal(capRecords(buf.ReadOnlyData(), path, maxAnswerRecords+1), v.(proto.Message))
}

// capRecords returns b, an encoded message, with only the first keep
// occurrences of the length-delimited field at path (the last number
// names the field; the ones before it, the message fields that hold it,
// every occurrence of which is rewritten). It returns b itself when the
// field occurs at most keep times, or when b (or a message on the path,
// or an occurrence of the field) is malformed: proto.Unmarshal then
// reports it.
func capRecords(b []byte, path []protowire.Number, keep int) []byte {
	n, ok := countField(b, path)
	if !ok || n <= keep {
		return b
	}
	return dropAfter(nil, b, path, &keep)
}

// countField counts the occurrences of the field at path, checking that
// the messages on the path and each occurrence parse as fields.
func countField(b []byte, path []protowire.Number) (int, bool) {
	count := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return 0, false
		}
		if num == path[0] && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n : n+m])
			c, ok := 1, validFields(v)
			if len(path) > 1 {
				c, ok = countField(v, path[1:])
			}
			if !ok {
				return 0, false
			}
			count += c
		}
		b = b[n+m:]
	}
	return count, true
}

// validFields reports whether b parses as a sequence of fields.
func validFields(b []byte) bool {
	for len(b) > 0 {
		_, _, n := protowire.ConsumeField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

// dropAfter appends b to out without the occurrences of the field at path
// after the first *keep (b parsed in countField).
func dropAfter(out, b []byte, path []protowire.Number, keep *int) []byte {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		field := b[:n+m]
		b = b[n+m:]
		if num != path[0] || typ != protowire.BytesType {
			out = append(out, field...)
			continue
		}
		if len(path) > 1 {
			v, _ := protowire.ConsumeBytes(field[n:])
			inner := dropAfter(nil, v, path[1:], keep)
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, inner)
			continue
		}
		if *keep > 0 {
			*keep--
			out = append(out, field...)
		}
	}
	return out
}
