package manifest

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// FuzzReadView: the JSON view (warm/manifest.json) is read back from disk.
// ReadView accepts exactly one JSON document of the view's fields (the
// view is a contract: unknown fields, and anything after the document,
// are corruption), and what it accepts re-encodes to a view that reads
// back the same.
func FuzzReadView(f *testing.F) {
	x := randomIndex(1, 5)
	good, _ := json.MarshalIndent(ViewOf(x), "", "  ")
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), "\n"...))
	f.Add(append(append([]byte(nil), good...), `{"version":2}`...))
	f.Add([]byte(`{"version":1,"stream_id":1,"segments":[{"segment_id":1,"residency":"residency(9","segment_crc64":"0x1_0","tier1":"none"}]}`))
	f.Add([]byte(`{"version":2,"extra":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		mem := vfs.NewMem()
		path := ViewPath("/s")
		require.NoError(t, vfs.MkdirAllSync(mem, filepath.Dir(path)))
		require.NoError(t, vfs.WriteFileAtomic(mem, path, b))
		v, err := ReadView(mem, "/s")
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		require.True(t, json.Valid(b), "accepted a view that is not one JSON document: %q", b)
		out, err := json.MarshalIndent(v, "", "  ")
		require.NoError(t, err)
		require.NoError(t, vfs.WriteFileAtomic(mem, path, out))
		again, err := ReadView(mem, "/s")
		require.NoError(t, err)
		require.Equal(t, v, again)
	})
}

// FuzzEnumText: the text forms of the manifest's enums and checksums (the
// JSON view, inspection output) parse only from the form MarshalText
// writes: no two texts mean the same value.
func FuzzEnumText(f *testing.F) {
	for _, s := range []string{"resident_in_tier0", "residency(0)", "residency(9", "residency(07)", "none", "tier1(4)",
		"SegmentOpened", "0x00000000deadbeef", "0xDEADBEEF", "1_0", "0b1", "reason(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(name string, u interface {
			UnmarshalText([]byte) error
			MarshalText() ([]byte, error)
		}) {
			if err := u.UnmarshalText([]byte(s)); err != nil {
				return
			}
			out, err := u.MarshalText()
			require.NoError(t, err)
			require.Equal(t, s, string(out), "%s %q parses to a value written as %q", name, s, out)
		}
		var r Residency
		check("residency", &r)
		var t1 Tier1State
		check("tier1 state", &t1)
		var rt RecordType
		check("record type", &rt)
		var rc ReasonCode
		check("reason code", &rc)
		var h Hex64
		check("hex64", &h)
	})
}

// FuzzFileNames: names listed in a manifest directory parse only from the
// names the log writes, so a stray file is never taken for a chunk or a
// snapshot of another index.
func FuzzFileNames(f *testing.F) {
	f.Add(chunkName(7))
	f.Add(chunkTmpName(1<<63 + 5))
	f.Add(snapshotName(3))
	f.Add("0000000000000000000+.mlog")
	f.Add("snapshot_-0000000000000000001.bin")
	f.Fuzz(func(t *testing.T, s string) {
		if idx, tmp, ok := parseChunkName(s); ok {
			want := chunkName(idx)
			if tmp {
				want = chunkTmpName(idx)
			}
			require.Equal(t, want, s)
		}
		if id, ok := parseSnapshotName(s); ok {
			require.Equal(t, snapshotName(id), s)
		}
	})
}
