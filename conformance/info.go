package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aof2/aof2/pluginapi"
	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

func infoBehaviours() []behaviour {
	return []behaviour{
		{"Info", testInfo},
		{"ChunkNegotiation", testChunkNegotiation},
		{"ConfigUnknownSetting", testConfigUnknown},
		{"Probe", testProbe},
		{"UnadvertisedFeatures", testUnadvertised},
	}
}

func testInfo(t T, s *suite) {
	info := s.tgt.Info
	check(t, RuleInfo, info.ContractMajor == pluginapi.ContractMajor, "got contract major %d, want %d", info.ContractMajor, pluginapi.ContractMajor)
	check(t, RuleInfo, info.Name != "", "got an empty name, want a non-empty one")
	l := info.Limits
	check(t, RuleInfo, l.MaxChunkSize == 0 || l.MaxChunkSize >= pluginapi.MinChunkSize, "got max chunk size %d, want 0 (no limit) or at least %d", l.MaxChunkSize, pluginapi.MinChunkSize)
	check(t, RuleInfo, l.MaxMetadataBytes > 0, "got max metadata bytes 0, want the backend's metadata budget (at most %d is the default)", pluginapi.DefaultMaxMetadataBytes)
	check(t, RuleChunkNegotiate, s.tgt.ChunkSize >= pluginapi.MinChunkSize && s.tgt.ChunkSize <= pluginapi.MaxChunkSize,
		"with no proposal: got chunk size %d, want one in [%d, %d]", s.tgt.ChunkSize, pluginapi.MinChunkSize, pluginapi.MaxChunkSize)
	ctx, cancel := s.ctx(t)
	defer cancel()
	again, err := s.b().Info(ctx)
	noErr(t, RuleInfo, err, "second GetInfo")
	check(t, RuleInfo, again == info || fmt.Sprint(again) == fmt.Sprint(info), "GetInfo after Configure: got %+v, want the same as before, %+v", again, info)
}

func testChunkNegotiation(t T, s *suite) {
	limit := s.tgt.Info.Limits.MaxChunkSize
	if limit == 0 {
		limit = pluginapi.MaxChunkSize
	}
	for _, proposed := range []uint32{pluginapi.MinChunkSize, 256 << 10, pluginapi.DefaultChunkSize, pluginapi.MaxChunkSize} {
		t.Run(fmt.Sprintf("propose-%d", proposed), func(t T) {
			ctx, cancel := s.ctx(t)
			defer cancel()
			tgt, err := s.h.Start(ctx, StartOptions{ChunkSize: proposed})
			noErr(t, RuleChunkNegotiate, err, "starting with a proposed chunk size of %d", proposed)
			defer func() { _ = tgt.Close() }()
			want := min(proposed, limit)
			check(t, RuleChunkNegotiate, tgt.ChunkSize >= pluginapi.MinChunkSize && tgt.ChunkSize <= want,
				"proposed %d (backend max %d): got chunk size %d, want one in [%d, %d]", proposed, limit, tgt.ChunkSize, pluginapi.MinChunkSize, want)
			// A full chunk must fit the plugin's gRPC limits: gRPC's default
			// server rejects it and the sender sees only io.EOF.
			data := pattern(uint64(proposed), int(tgt.ChunkSize)*2+1)
			key := s.key(fmt.Sprintf("chunk-negotiation/%d", proposed))
			s.put(t, ctx, tgt.Backend, key, data)
			_, got, err := s.get(ctx, tgt.Backend, pluginapi.GetRequest{Key: key})
			noErr(t, RuleChunkNegotiate, err, "Get with chunk size %d", tgt.ChunkSize)
			check(t, RuleChunkNegotiate, bytes.Equal(got, data), "round trip with chunk size %d: got %d bytes (first difference at %d), want the %d bytes stored", tgt.ChunkSize, len(got), firstDiff(got, data), len(data))
		})
	}
}

func testConfigUnknown(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	tgt, err := s.h.Start(ctx, StartOptions{ExtraConfig: map[string]string{"aof2_conformance_no_such_setting": "1"}})
	if err == nil {
		_ = tgt.Close()
	}
	wantErr(t, RuleConfigUnknown, err, pluginapi.ErrInvalidConfig, "Configure with an unknown setting")
}

func testProbe(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	noErr(t, RuleProbe, s.b().Probe(ctx, pluginapi.ProbeRequest{}), "Probe")
	key := s.key("probe/write")
	noErr(t, RuleProbe, s.b().Probe(ctx, pluginapi.ProbeRequest{WriteKey: key}), "Probe with a write key")
	s.absent(t, ctx, RuleProbe, key, "after a write probe")
}

// testUnadvertised checks that every optional feature the backend does not
// advertise answers Unimplemented rather than half-working.
func testUnadvertised(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	c := s.caps()
	key := s.key("unadvertised/object")
	data := []byte("0123456789")
	s.put(t, ctx, s.b(), key, data)
	crc := pluginapi.CRC64(data)
	skipped := 0
	if !c.RangeGet {
		_, _, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key, Offset: 1, Length: 2})
		wantErr(t, RuleUnimplemented, err, pluginapi.ErrUnimplemented, "ranged Get without range_get")
	} else {
		skipped++
	}
	if !c.IfAbsent {
		_, err := s.b().Put(ctx, pluginapi.PutRequest{Key: key, Size: 10, CRC64: crc, IfAbsent: true}, bytes.NewReader(data))
		wantErr(t, RuleUnimplemented, err, pluginapi.ErrUnimplemented, "Put if_absent without if_absent")
	} else {
		skipped++
	}
	if !c.IfMatch {
		_, err := s.b().Put(ctx, pluginapi.PutRequest{Key: key, Size: 10, CRC64: crc, IfMatch: "x"}, bytes.NewReader(data))
		wantErr(t, RuleUnimplemented, err, pluginapi.ErrUnimplemented, "Put if_match without if_match")
	} else {
		skipped++
	}
	if !c.List {
		err := s.b().List(ctx, pluginapi.ListRequest{Prefix: s.prefix}, func([]pluginapi.ObjectInfo) error { return nil })
		wantErr(t, RuleUnimplemented, err, pluginapi.ErrUnimplemented, "List without list")
	} else {
		skipped++
	}
	if !c.PutFile {
		_, err := s.b().PutFile(ctx, pluginapi.PutRequest{Key: key, Size: 10, CRC64: crc}, s.tempFile(t, data))
		wantErr(t, RuleUnimplemented, err, pluginapi.ErrUnimplemented, "PutFile without put_file")
	} else {
		skipped++
	}
	if !c.GetFile {
		_, err := s.b().GetFile(ctx, pluginapi.GetRequest{Key: key}, s.tempPath(t, "getfile"))
		wantErr(t, RuleUnimplemented, err, pluginapi.ErrUnimplemented, "GetFile without get_file")
	} else {
		skipped++
	}
	if skipped == 6 {
		t.Logf("every optional feature is advertised")
	}
}

// rawPut sends a hand-built Put stream and returns the plugin's verdict.
func rawPut(ctx context.Context, raw pb.BackendClient, msgs ...*pb.PutRequest) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := raw.Put(ctx)
	if err != nil {
		return pluginapi.FromStatusError(err)
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return pluginapi.FromStatusError(err)
		}
	}
	_, err = stream.CloseAndRecv()
	return pluginapi.FromStatusError(err)
}

func header(key string, data []byte) *pb.PutRequest { return headerMD(key, data, nil) }

func headerMD(key string, data []byte, md map[string]string) *pb.PutRequest {
	return &pb.PutRequest{Msg: &pb.PutRequest_Header{Header: &pb.PutHeader{Key: key, Size: uint64(len(data)), Crc64Nvme: pluginapi.CRC64(data), Metadata: md}}}
}

func chunk(off uint64, data []byte) *pb.PutRequest {
	return &pb.PutRequest{Msg: &pb.PutRequest_Chunk{Chunk: &pb.Chunk{Offset: off, Data: data}}}
}
