package coordinator

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// FuzzDecodeWriterFile: the data directory's writer file (node id, epoch,
// fence progress) decodes only to a record naming a node, which
// saveWriterFile writes back to bytes that load the same.
func FuzzDecodeWriterFile(f *testing.F) {
	good, _ := json.Marshal(writerFile{NodeID: "ab", Epoch: 3, Fenced: 2, Partial: &partialFence{Epoch: 3, Streams: []types.StreamID{1, 2}}})
	f.Add(good)
	f.Add([]byte(`{"node_id":"","epoch":1}`))
	f.Add([]byte(`{"node_id":"a","partial_fence":null}`))
	f.Add([]byte(`{"node_id":"a","partial_fence":{"streams":[-1]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWriterFile(b)
		if err != nil {
			return
		}
		require.NotEmpty(t, w.NodeID)
		mem := vfs.NewMem()
		require.NoError(t, vfs.MkdirAllSync(mem, "/d"))
		require.NoError(t, saveWriterFile(mem, "/d", w))
		again, err := loadWriterFile(mem, "/d")
		require.NoError(t, err)
		require.Equal(t, w, again)
	})
}

// FuzzDecodeStoreRecord: the data directory's record of its tier-2 store
// decodes only to a record naming a store, and re-encodes to the same.
func FuzzDecodeStoreRecord(f *testing.F) {
	f.Add([]byte(`{"store_id":"0123456789abcdef"}` + "\n"))
	f.Add([]byte(`{"store_id":""}`))
	f.Add([]byte(`{"STORE_ID":"x","store_id":"y"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeStoreRecord(b)
		if err != nil {
			return
		}
		require.NotEmpty(t, r.StoreID)
		out, err := json.Marshal(r)
		require.NoError(t, err)
		again, err := decodeStoreRecord(out)
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}
