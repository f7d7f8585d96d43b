package manifest

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/aof2/aof2/core/vfs"
)

// Fences (docs/adr-fencing.md). A stream's commit log in tier 2 is its
// sealed chunks, each created only if its key is absent, so the log is
// one sequence. A writer that took the prefix over closes the previous
// writer's part of that sequence by creating, at the next free index, a
// chunk that holds a fence: a CustomEvent of schema SchemaFence naming
// the new epoch. A chunk the previous writer creates afterwards finds
// the index taken and is no part of any history.

// SchemaFence is the CustomEvent schema of a fence record. ("FNCE")
const SchemaFence uint32 = 0x464e4345

// Fence is the blob of a fence record.
type Fence struct {
	Epoch  uint64 `json:"epoch"`
	NodeID string `json:"node_id"`
}

// Record is the fence as a manifest record.
func (f Fence) Record() CustomEvent {
	b, _ := json.Marshal(f)
	return CustomEvent{SchemaID: SchemaFence, Blob: b}
}

// FenceOf returns the fence rec holds, if it is one. A record of schema
// SchemaFence whose blob does not decode is ErrCorrupt.
func FenceOf(rec Record) (Fence, bool, error) {
	ev, ok := rec.(CustomEvent)
	if !ok || ev.SchemaID != SchemaFence {
		return Fence{}, false, nil
	}
	var f Fence
	if err := json.Unmarshal(ev.Blob, &f); err != nil || f.Epoch == 0 {
		return Fence{}, false, corruptf("fence record %q does not decode (%v)", ev.Blob, err)
	}
	return f, true, nil
}

// ChunkRecords verifies a sealed chunk's bytes as CheckChunk does and
// returns its records in log order.
func ChunkRecords(b []byte, index uint64) ([]Record, error) {
	h, err := CheckChunk(b, index)
	if err != nil {
		return nil, err
	}
	cr := &chunkRead{index: index, name: chunkName(index), hdr: h}
	cr.walk(b)
	out := make([]Record, len(cr.records))
	for i, ri := range cr.records {
		out[i] = ri.Record
	}
	return out, nil
}

// ChunkFence verifies a sealed chunk's bytes as CheckChunk does and
// returns the newest fence among its records.
func ChunkFence(b []byte, index uint64) (Fence, bool, error) {
	recs, err := ChunkRecords(b, index)
	if err != nil {
		return Fence{}, false, err
	}
	var last Fence
	found := false
	for _, rec := range recs {
		f, ok, err := FenceOf(rec)
		if err != nil {
			return Fence{}, false, fmt.Errorf("chunk %d: %w", index, err)
		}
		if ok {
			last, found = f, true
		}
	}
	return last, found, nil
}

// NewestFence returns the newest fence in the log's newest n sealed
// chunks: after a takeover, the fence the new writer's log starts its
// epoch with.
func (l *Log) NewestFence(n int) (Fence, bool, error) {
	chunks := l.SealedChunks()
	for i, ch := range slices.Backward(chunks) {
		if i < len(chunks)-n {
			break
		}
		b, err := vfs.ReadFile(l.fs, ch.Path)
		if err != nil {
			return Fence{}, false, fmt.Errorf("manifest: read %s: %w", ch.Path, err)
		}
		f, ok, err := ChunkFence(b, ch.Index)
		if err != nil || ok {
			return f, ok, err
		}
	}
	return Fence{}, false, nil
}
