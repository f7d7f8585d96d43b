package host_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/pluginapi/host"
	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

// Compatibility across contract minors (docs/plugin-contract.md#versioning):
// the host takes a plugin of an older minor and one of a newer minor, and
// a plugin takes requests carrying fields of a minor newer than its own.
// The contract has a single minor so far, so the fixtures are the
// testplugin modes older-minor and newer-minor (pluginapi/internal/testplugin),
// which put the other minor on the wire; cmd/aof2-host's
// TestServeWithOtherContractMinors serves a host with each.

// withUnknownField adds a field no minor of v1 has: what a newer host
// sends an older plugin.
func withUnknownField[M proto.Message](m M) M {
	r := m.ProtoReflect()
	r.SetUnknown(protowire.AppendVarint(protowire.AppendTag(r.GetUnknown(), 9999, protowire.VarintType), 1))
	return m
}

// TestOlderMinorPlugin: a plugin that advertises an older minor with fewer
// capabilities starts under this host, passes the suite (which checks that
// what it does not advertise answers Unimplemented), and ignores request
// fields a newer host sends.
func TestOlderMinorPlugin(t *testing.T) {
	p, err := launch(t, bin(t, "testplugin"), []string{"older-minor"}, nil)
	require.NoError(t, err)
	require.EqualValues(t, 0, p.Advertised.ContractMinor)
	require.Equal(t, pluginapi.Capabilities{IfAbsent: true, IfMatch: true, List: true}, p.Advertised.Capabilities)

	ctx := t.Context()
	raw := p.Raw()
	_, err = raw.GetInfo(ctx, withUnknownField(&pb.GetInfoRequest{}))
	require.NoError(t, err)
	_, err = raw.Configure(ctx, withUnknownField(&pb.ConfigureRequest{}))
	require.NoError(t, err)
	require.NoError(t, pluginapi.FromStatusError(func() error { _, err := raw.Probe(ctx, withUnknownField(&pb.ProbeRequest{})); return err }()))

	data := []byte("written by a newer host")
	put, err := raw.Put(ctx)
	require.NoError(t, err)
	hdr := withUnknownField(&pb.PutHeader{Key: "minor/object", Size: uint64(len(data)), Crc64Nvme: pluginapi.CRC64(data),
		Precondition: withUnknownField(&pb.Precondition{IfAbsent: true})})
	require.NoError(t, put.Send(withUnknownField(&pb.PutRequest{Msg: &pb.PutRequest_Header{Header: hdr}})))
	require.NoError(t, put.Send(&pb.PutRequest{Msg: &pb.PutRequest_Chunk{Chunk: withUnknownField(&pb.Chunk{Offset: 0, Data: data})}}))
	_, err = put.CloseAndRecv()
	require.NoError(t, pluginapi.FromStatusError(err))

	head, err := raw.Head(ctx, withUnknownField(&pb.HeadRequest{Key: "minor/object"}))
	require.NoError(t, err)
	require.EqualValues(t, len(data), head.GetInfo().GetSize())
	_, rc, err := p.Get(ctx, pluginapi.GetRequest{Key: "minor/object"})
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, data, got)
	_, err = raw.Delete(ctx, withUnknownField(&pb.DeleteRequest{Key: "minor/object"}))
	require.NoError(t, err)

	rep := conformance.Certify(ctx, &conformance.Binary{Path: bin(t, "testplugin"), Launch: host.LaunchConfig{Args: []string{"older-minor"}, Logger: quietLogger()}},
		conformance.Options{Quick: true})
	require.True(t, rep.OK(), "%+v", rep.Cases)
}

// TestNewerMinorPlugin: a plugin that reports a newer minor than the
// host's, and sends fields and a capability flag the host does not know,
// starts and works; the host reports the plugin's minor as it is.
func TestNewerMinorPlugin(t *testing.T) {
	p, err := launch(t, bin(t, "testplugin"), []string{"newer-minor"}, nil)
	require.NoError(t, err)
	require.EqualValues(t, pluginapi.ContractMinor+1, p.Advertised.ContractMinor)
	require.True(t, p.Advertised.Capabilities.List, "the known capabilities survive the unknown one")

	ctx := t.Context()
	data := bytes.Repeat([]byte("newer"), 1000)
	ack, err := p.Put(ctx, pluginapi.PutRequest{Key: "minor/object", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data))
	require.NoError(t, err)
	info, err := p.Head(ctx, "minor/object")
	require.NoError(t, err)
	require.Equal(t, ack.ETag, info.ETag)
	_, rc, err := p.Get(ctx, pluginapi.GetRequest{Key: "minor/object", Offset: 5})
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, data[5:], got)

	rep := conformance.Certify(ctx, &conformance.Binary{Path: bin(t, "testplugin"), Launch: host.LaunchConfig{Args: []string{"newer-minor"}, Logger: quietLogger()}},
		conformance.Options{Quick: true})
	require.True(t, rep.OK(), "%+v", rep.Cases)
}
