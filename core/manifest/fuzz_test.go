package manifest

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/aof2/aof2/core/vfs"
)

// The fuzz targets check that the decoders never panic or over-allocate on
// hostile input (every length is checked against the bytes remaining), and
// that whatever decodes re-encodes to the same bytes (strict, canonical
// decoding: no two byte strings mean the same thing).

func FuzzChunkHeader(f *testing.F) {
	f.Add(ChunkHeader{Index: 1, BaseRecord: 2, TailOffset: 64, CommittedLen: 112, CRC64: 3, Flags: FlagSealed}.marshal())
	f.Add(ChunkHeader{TailOffset: 64, CommittedLen: 64}.marshal())
	f.Add([]byte("AOF2MLOG"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeChunkHeader(b)
		if err != nil {
			return
		}
		if got := h.marshal(); !bytes.Equal(got, b[:chunkHeaderLen]) {
			t.Fatalf("header %+v re-encodes to %x, decoded from %x", h, got, b[:chunkHeaderLen])
		}
		if h.CommittedLen < chunkHeaderLen || h.CommittedLen > MaxChunkCapacity || h.TailOffset > h.CommittedLen {
			t.Fatalf("accepted inconsistent header %+v", h)
		}
	})
}

func FuzzRecord(f *testing.F) {
	for _, r := range allRecords() {
		b, err := appendRecord(nil, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeRecord(b)
		if err != nil {
			return
		}
		if n > int64(len(b)) || n%8 != 0 {
			t.Fatalf("frame size %d of %d bytes", n, len(b))
		}
		got, err := appendRecord(nil, rec)
		if err != nil {
			if _, unknown := rec.(Unknown); unknown {
				return // decodable, not appendable by design
			}
			t.Fatalf("decoded %#v does not re-encode: %v", rec, err)
		}
		if !bytes.Equal(got, b[:n]) {
			t.Fatalf("record %#v re-encodes to %x, decoded from %x", rec, got, b[:n])
		}
	})
}

func FuzzSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(Snapshot{ID: 1, ChunkIndex: 2, ChunkOffset: 64, Index: randomIndex(1, 20)}))
	f.Add(encodeSnapshot(Snapshot{ID: 1, ChunkIndex: 0, ChunkOffset: 64, Index: NewIndex(9)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The fuzzer rarely guesses a CRC; reseal half of the inputs so
		// that the structural decoder behind the CRC is exercised.
		if len(b) > snapHeaderLen+snapTrailerLen && b[len(b)-1]&1 == 1 {
			b = reseal(append([]byte(nil), b...))
		}
		s, err := decodeSnapshot(b, 9)
		if err != nil {
			return
		}
		if got := encodeSnapshot(s); !bytes.Equal(got, b) {
			t.Fatalf("snapshot re-encodes differently:\n got %x\nwant %x", got, b)
		}
	})
}

// FuzzReplayChunk replays an arbitrary chunk file: replay must never panic,
// and must either apply exactly the records that verify or report damage.
func FuzzReplayChunk(f *testing.F) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l, err := Open(ctx, mem, "s", 9, Options{ChunkCapacity: MinChunkCapacity, RotationPeriod: -1, SnapshotEveryBytes: -1, LogOnly: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range allRecords()[:10] {
		if err := l.AppendCommit(ctx, r); err != nil {
			f.Fatal(err)
		}
	}
	_ = l.Close()
	seed, err := vfs.ReadFile(mem, filepath.Join("s", manifestDirName, chunkName(0)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxChunkCapacity+1024 {
			return
		}
		fs := vfs.NewMem()
		mdir := filepath.Join("s", manifestDirName)
		if err := fs.MkdirAll(mdir, 0o755); err != nil {
			t.Fatal(err)
		}
		file, err := fs.Create(filepath.Join(mdir, chunkName(0)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := file.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		_ = file.Close()
		res, err := replay(ctx, fs, mdir, 9, SystemClock)
		if err != nil {
			t.Fatal(err)
		}
		cr := res.replayed[0]
		events := res.stats.CorruptionEvents
		if cr.err != nil && (events == 0 || !res.stats.NeedsRepair) {
			t.Fatalf("chunk error %v but %d corruption events, needs repair %v", cr.err, events, res.stats.NeedsRepair)
		}
		if events == 0 && !cr.crcOK {
			t.Fatal("a chunk with a bad CRC replayed clean")
		}
		if res.stats.RecordsApplied != uint64(len(cr.records)) {
			t.Fatalf("applied %d of %d verified records", res.stats.RecordsApplied, len(cr.records))
		}
	})
}

// FuzzChunkFence: ChunkRecords and ChunkFence never panic on an uploaded
// chunk's bytes, and a fence blob decodes only to a fence with an epoch.
func FuzzChunkFence(f *testing.F) {
	f.Add([]byte(`{"epoch":2,"node_id":"ab"}`), []byte{})
	f.Add([]byte(`{"epoch":0}`), []byte("AOF2MLOG"))
	f.Add([]byte(`not json`), make([]byte, chunkHeaderLen))
	f.Fuzz(func(t *testing.T, blob, chunk []byte) {
		fence, ok, err := FenceOf(CustomEvent{SchemaID: SchemaFence, Blob: blob})
		if err == nil && (!ok || fence.Epoch == 0) {
			t.Fatalf("blob %q decoded to %+v, %v", blob, fence, ok)
		}
		_, _ = ChunkRecords(chunk, 0)
		_, _, _ = ChunkFence(chunk, 0)
	})
}
