package compat

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/fs"
)

var update = flag.Bool("update", false, "rewrite testdata/v1 (only when a format changes on purpose: docs/compatibility.md)")

const golden = "testdata/v1"

// written is one record of the golden data: its id as the engine
// returned it, and the stream and ordinal its payload derives from.
type written struct {
	Stream  uint64 `json:"stream"`
	ID      string `json:"id"`
	Ordinal int    `json:"ordinal"`
}

func payload(stream uint64, i int) []byte {
	return fmt.Appendf(nil, "golden stream %d record %06d %s", stream, i, make([]byte, 100+i%300))
}

// node is a store and its coordinator over the fs backend rooted in the
// data directory (as the host's default).
type node struct {
	st     *core.Store
	c      *coordinator.Coordinator
	remote *tier2.Store
}

func open(t *testing.T, dataDir string) *node {
	t.Helper()
	b := fs.New()
	_, err := b.Configure(context.Background(), pluginapi.ConfigureRequest{Config: map[string]string{"root": filepath.Join(dataDir, "tier2")}})
	require.NoError(t, err)
	remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	c, err := coordinator.New(coordinator.Config{DataDir: dataDir, Tier2: remote, ScanInterval: 10 * time.Millisecond,
		Tier0: budget.Config{Policy: budget.PolicyTier2}, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	st, err := core.Open(dataDir, core.Config{Tiering: c, SegmentSize: 1 << 20, Manifest: manifest.Options{RotationPeriod: 5 * time.Millisecond, SnapshotEveryChunks: 2}})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), st))
	return &node{st: st, c: c, remote: remote}
}

func (n *node) close(t *testing.T) {
	t.Helper()
	require.NoError(t, n.st.Close())
	require.NoError(t, n.c.Close())
	require.NoError(t, n.remote.Close(context.Background()))
}

// generate writes testdata/v1: stream 1 with three sealed segments,
// stream 2 with a sealed segment and an active one, everything sealed
// compressed and uploaded, the manifest chunks uploaded, a clean close.
func generate(t *testing.T) {
	require.NoError(t, os.RemoveAll(golden))
	dataDir, err := filepath.Abs(filepath.Join(golden, "data"))
	require.NoError(t, err)
	n := open(t, dataDir)
	ctx := context.Background()
	var recs []written
	write := func(stream uint64, from, to int) {
		s, err := n.st.Stream(types.StreamID(stream))
		require.NoError(t, err)
		for i := from; i < to; i++ {
			id, err := s.AppendDurable(ctx, payload(stream, i), core.AppendOptions{})
			require.NoError(t, err)
			recs = append(recs, written{Stream: stream, ID: id.String(), Ordinal: i})
		}
	}
	seal := func(stream uint64) {
		s, err := n.st.Stream(types.StreamID(stream))
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx))
	}
	write(1, 0, 50)
	seal(1)
	write(1, 50, 120)
	seal(1)
	write(1, 120, 200)
	seal(1)
	write(2, 0, 30)
	seal(2)
	write(2, 30, 45) // left in the active segment
	for _, id := range []types.StreamID{1, 2} {
		s, err := n.st.Lookup(id)
		require.NoError(t, err)
		testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
			for _, info := range s.SegmentList() {
				if ms, _ := s.TierLog().Segment(info.ID); info.Footer != nil && (ms.Tier2.Key == "" || ms.Tier1.State != manifest.Tier1Compressed) {
					return false
				}
			}
			for _, ch := range s.TierLog().SealedChunks() {
				if !ch.Uploaded {
					return false
				}
			}
			if len(s.TierLog().SealedChunks()) == 0 {
				return false
			}
			l, err := n.remote.ListStream(ctx, id)
			return err == nil && (id != 1 || len(l.Snapshots) > 0)
		}, "stream %d compressed, uploaded, its chunks (and stream 1's snapshot) uploaded", id)
	}
	n.close(t)
	b, err := json.MarshalIndent(recs, "", " ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(golden, "records.json"), b, 0o644))
}

// TestGoldenData opens the v1 golden data with this build and checks
// every record and every copy (docs/compatibility.md).
func TestGoldenData(t *testing.T) {
	if *update {
		generate(t)
	}
	b, err := os.ReadFile(filepath.Join(golden, "records.json"))
	require.NoError(t, err, "run `go test ./compat -run Golden -update` once to create the golden data")
	var recs []written
	require.NoError(t, json.Unmarshal(b, &recs))
	require.Len(t, recs, 245)

	// A copy: opening writes marks and may seal nothing, but the golden
	// files stay as the old release left them.
	dataDir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.CopyFS(dataDir, os.DirFS(filepath.Join(golden, "data"))))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The manifests verify, locally.
	for _, id := range []uint64{1, 2} {
		findings, err := manifest.NewInspector(vfs.OS, filepath.Join(dataDir, "streams", fmt.Sprint(id)), types.StreamID(id)).Verify(ctx, manifest.VerifyOptions{})
		require.NoError(t, err)
		for _, f := range findings {
			require.NotEqual(t, manifest.SeverityError, f.Severity, "stream %d: %+v", id, f)
		}
	}

	n := open(t, dataDir)
	defer n.close(t)
	// Every record, by a reader from the start, byte for byte and at its id.
	byStream := map[uint64][]written{}
	for _, r := range recs {
		byStream[r.Stream] = append(byStream[r.Stream], r)
	}
	for stream, want := range byStream {
		s, err := n.st.Lookup(types.StreamID(stream))
		require.NoError(t, err)
		rd, err := s.NewReader(core.AtStart())
		require.NoError(t, err)
		for _, w := range want {
			rec, err := rd.NextCtx(ctx)
			require.NoError(t, err, "stream %d record %s", stream, w.ID)
			require.Equal(t, w.ID, rec.ID.String())
			require.Equal(t, payload(stream, w.Ordinal), rec.Payload, "stream %d record %s", stream, w.ID)
		}
		_, err = rd.NextCtx(ctx)
		require.True(t, errors.Is(err, io.EOF), "stream %d: nothing past the golden records: %v", stream, err)
		rd.Close()

		// Every sealed segment's warm artifact and tier-2 object verify
		// against the manifest's checksum.
		for _, info := range s.SegmentList() {
			if info.Footer == nil {
				continue
			}
			k := types.SegmentKey{Stream: types.StreamID(stream), Segment: info.ID}
			ms, ok := s.TierLog().Segment(info.ID)
			require.True(t, ok)
			exp := tier1.Expected{Key: k, SegmentCRC: info.Footer.SegmentCRC, Uploaded: true}
			a, err := n.c.Warm().OpenArtifact(k)
			require.NoError(t, err, "%s: warm artifact", k)
			require.NoError(t, tier1.VerifyArtifact(ctx, a, exp), "%s: warm artifact", k)
			a.Close()
			h, f, err := restore.Describe(ctx, n.remote, k, ms.Tier2.ETag)
			require.NoError(t, err, "%s: tier-2 object", k)
			require.Equal(t, info.ID, h.SegmentID)
			require.Equal(t, *info.Footer, f, "%s: the tier-2 object's footer is the segment's", k)
		}
	}
}
