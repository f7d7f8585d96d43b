package restore

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/pluginapi"
)

// TestSnapshotWithMalformedMetadataIsCorrupt: a restore checks the log
// position a snapshot's metadata names against the one the snapshot
// holds. Metadata that does not parse is damage too, never a reason to
// skip that check.
func TestSnapshotWithMalformedMetadataIsCorrupt(t *testing.T) {
	ctx := context.Background()
	const stream = types.StreamID(9)
	mem := vfs.NewMem()
	l, err := manifest.Open(ctx, mem, "/s", stream, manifest.Options{LogOnly: true, SnapshotEveryBytes: -1})
	require.NoError(t, err)
	require.NoError(t, l.AppendCommit(ctx, manifest.SegmentOpened{Header: manifest.Header{SegmentID: 1}}))
	info, err := l.Snapshot(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	data, err := vfs.ReadFile(mem, fmt.Sprintf("/s/manifest/snapshot_%020d.bin", info.ID))
	require.NoError(t, err)

	b := fake.New(fake.Options{})
	remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	key := tier2.Layout{}.SnapshotKey(stream, info.ID)
	md := map[string]string{
		tier2.MetaKind: tier2.KindSnapshot.String(), tier2.MetaStream: "9", tier2.MetaSnapshot: fmt.Sprint(info.ID),
		tier2.MetaCRC64: fmt.Sprintf("%016x", pluginapi.CRC64(data)), tier2.MetaSize: fmt.Sprint(len(data)),
		tier2.MetaSnapshotChunk: "not a number", tier2.MetaSnapshotOffset: fmt.Sprint(info.ChunkOffset),
	}
	_, err = remote.Put(ctx, tier2.Upload{Key: key, Data: data, Metadata: md})
	require.NoError(t, err)
	l2, err := remote.ListStream(ctx, stream)
	require.NoError(t, err)
	require.Len(t, l2.Snapshots, 1)
	_, _, err = fetchSnapshot(ctx, remote, stream, l2.Snapshots[0])
	require.ErrorIs(t, err, manifest.ErrCorrupt)
}
