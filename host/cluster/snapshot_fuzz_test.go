package cluster

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeSnapshotDoc: a Raft snapshot comes from disk or from the
// leader. It decodes only as one document of this version, and what
// decodes re-encodes (as Persist writes it) to a document that decodes
// the same.
func FuzzDecodeSnapshotDoc(f *testing.F) {
	doc := snapshotDoc{Version: snapshotVersion, Applied: 9, Streams: []streamPosition{{Stream: 1, LastExt: 2, Records: 3, Sealed: true,
		Head: 4, HeadRecord: 5, Tier2: []tierObject{{Segment: 4, Key: "k", ETag: "e"}}}}, Members: map[string]APIAddr{"n1": {GRPC: "a", HTTP: "b"}}}
	var good bytes.Buffer
	require.NoError(f, json.NewEncoder(&good).Encode(&doc))
	f.Add(good.Bytes())
	f.Add(append(append([]byte(nil), good.Bytes()...), good.Bytes()...))
	f.Add([]byte(`{"version":1}garbage`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeSnapshotDoc(bytes.NewReader(b))
		if err != nil {
			return
		}
		require.True(t, json.Valid(b), "accepted a snapshot that is not one JSON document")
		require.Equal(t, snapshotVersion, d.Version)
		// Compared as written: an empty list and none are one document
		// (omitempty), which is all a snapshot means.
		var out, out2 bytes.Buffer
		require.NoError(t, json.NewEncoder(&out).Encode(&d))
		again, err := decodeSnapshotDoc(bytes.NewReader(out.Bytes()))
		require.NoError(t, err)
		require.NoError(t, json.NewEncoder(&out2).Encode(&again))
		require.Equal(t, out.String(), out2.String())
	})
}
