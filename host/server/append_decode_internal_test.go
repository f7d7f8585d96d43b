package server

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

func oneByteAppend(n int) *aof2v1.AppendRequest {
	req := &aof2v1.AppendRequest{StreamId: 7, Records: make([]*aof2v1.Record, n), ProducerId: 3, Sequence: 4}
	for i := range req.Records {
		req.Records[i] = &aof2v1.Record{Payload: []byte{1}}
	}
	return req
}

// decodeAlloc is the bytes allocated by the server codec decoding wire
// into v.
func decodeAlloc(t *testing.T, wire []byte, v proto.Message) uint64 {
	t.Helper()
	codec := budgetCodec{base: encoding.GetCodecV2("proto")}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	require.NoError(t, codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, v))
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A request with far more records than an append may carry costs memory
// for maxAnswerRecords of them, not for all.
func TestAppendDecodeMemoryBounded(t *testing.T) {
	const n = 2_000_000
	req := oneByteAppend(n)
	wire, err := proto.Marshal(req)
	require.NoError(t, err)
	pwire, err := proto.Marshal(&aof2v1.AppendPipelineRequest{Seq: 9, Append: req})
	require.NoError(t, err)
	req = nil

	bound := uint64(maxAnswerRecords) * 256
	var got aof2v1.AppendRequest
	alloc := decodeAlloc(t, wire, &got)
	t.Logf("Append: %d records, %d bytes on the wire: %d bytes allocated (bound %d)", n, len(wire), alloc, bound)
	require.Less(t, alloc, bound)
	require.Len(t, got.GetRecords(), maxAnswerRecords+1)
	require.Equal(t, uint64(7), got.GetStreamId())
	require.Equal(t, uint64(3), got.GetProducerId())
	require.Equal(t, uint64(4), got.GetSequence())

	var pgot aof2v1.AppendPipelineRequest
	alloc = decodeAlloc(t, pwire, &pgot)
	t.Logf("AppendPipeline: %d bytes allocated", alloc)
	require.Less(t, alloc, bound)
	require.Equal(t, uint64(9), pgot.GetSeq())
	require.Len(t, pgot.GetAppend().GetRecords(), maxAnswerRecords+1)

	// AppendStream's messages are decoded whole.
	whole := new(aof2v1.AppendRequest)
	fullDecode.Store(whole, struct{}{})
	defer fullDecode.Delete(whole)
	alloc = decodeAlloc(t, wire, whole)
	t.Logf("AppendStream (whole): %d bytes allocated", alloc)
	require.Len(t, whole.GetRecords(), n)
}

func TestCapRecordsUnderCapUnchanged(t *testing.T) {
	wire, err := proto.Marshal(oneByteAppend(3))
	require.NoError(t, err)
	require.Equal(t, &wire[0], &capRecords(wire, appendRecordsPath, 3)[0], "returned as it is")
	require.Len(t, capRecords(wire, appendRecordsPath, 2), len(wire)-5, "one record (5 bytes) dropped")
}

func FuzzCapRecords(f *testing.F) {
	rec := func(p string) []byte {
		b := protowire.AppendTag(nil, 1, protowire.BytesType)
		return protowire.AppendBytes(b, []byte(p))
	}
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	var app []byte
	app = protowire.AppendTag(app, 1, protowire.VarintType)
	app = protowire.AppendVarint(app, 5)
	for _, p := range []string{"a", "bb", "", "c"} {
		app = field(app, 2, rec(p))
	}
	app = protowire.AppendTag(app, 99, protowire.Fixed32Type)
	app = protowire.AppendFixed32(app, 1)
	app = field(app, 2, rec("d"))
	pipe := protowire.AppendTag(nil, 1, protowire.VarintType)
	pipe = protowire.AppendVarint(pipe, 8)
	pipe = field(pipe, 2, app)
	pipe = field(pipe, 2, app[:4])
	pipe = field(pipe, 2, app)
	for _, seed := range [][]byte{app, pipe, app[:len(app)-1], append(app, 0x10)} {
		f.Add(seed, uint8(2), false)
		f.Add(seed, uint8(1), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, keep uint8, pipeline bool) {
		k := int(keep % 5)
		path, msg := appendRecordsPath, func() proto.Message { return new(aof2v1.AppendRequest) }
		records := func(m proto.Message) *[]*aof2v1.Record { return &m.(*aof2v1.AppendRequest).Records }
		if pipeline {
			path, msg = pipelineRecordsPath, func() proto.Message { return new(aof2v1.AppendPipelineRequest) }
			records = func(m proto.Message) *[]*aof2v1.Record {
				p := m.(*aof2v1.AppendPipelineRequest)
				if p.Append == nil {
					return new([]*aof2v1.Record)
				}
				return &p.Append.Records
			}
		}
		out := capRecords(in, path, k)
		want := msg()
		inErr := proto.Unmarshal(in, want)
		if len(out) == len(in) && (len(in) == 0 || &out[0] == &in[0]) {
			if inErr == nil {
				require.LessOrEqual(t, len(*records(want)), k, "too many records left")
			}
			return
		}
		require.NoError(t, inErr, "reduced a message that does not decode")
		require.Greater(t, len(*records(want)), k)
		*records(want) = (*records(want))[:k]
		got := msg()
		require.NoError(t, proto.Unmarshal(out, got))
		require.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
	})
}
