package coordinator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
)

// verifyProblems reads aof_tier1_verify_problems_total{kind}.
func verifyProblems(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "aof_tier1_verify_problems_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRestartAdoptsWarmArtifactsQuietly: after a clean stop and a restart
// the warm artifacts the manifests name are adopted without a
// tier1_unknown_artifact warning (the warm cache is opened before the
// store has recovered the manifests, so it has no expectations yet and
// used to report every artifact as unknown, and count it, before Start
// adopted them all). An artifact of a segment no stream knows is still
// reported, once.
func TestRestartAdoptsWarmArtifactsQuietly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	start := func() (*rig, *syncBuf, *prometheus.Registry) {
		remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger()})
		require.NoError(t, err)
		logs, reg := &syncBuf{}, prometheus.NewRegistry()
		logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn, JSONFormat: true})
		return startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 20 * time.Millisecond, Logger: logger, Registerer: reg,
			Tier0: budget.Config{Policy: budget.PolicyTier2}}, core.Config{}), logs, reg
	}
	r, _, _ := start()
	s, err := r.st.Stream(7)
	require.NoError(t, err)
	writeSealed(t, ctx, s, 2000) // a few segments, compressed and uploaded
	var warm []types.SegmentKey
	for _, info := range s.SegmentList() {
		if k := (types.SegmentKey{Stream: 7, Segment: info.ID}); r.c.Warm().Contains(k) {
			warm = append(warm, k)
		}
	}
	require.GreaterOrEqual(t, len(warm), 2, "sealed segments are in the warm cache")
	r.close(t)

	r, logs, reg := start()
	for _, k := range warm {
		require.True(t, r.c.Warm().Contains(k), "segment %s adopted after the restart", k)
	}
	require.NotContains(t, logs.String(), "tier1_unknown_artifact")
	require.Zero(t, verifyProblems(t, reg, "unknown"))
	r.close(t)

	// A warm artifact of a segment the store does not have is unknown.
	data, err := os.ReadFile(tier1.ArtifactPath(dir, warm[0]))
	require.NoError(t, err)
	stray := types.SegmentKey{Stream: 7, Segment: 900}
	require.NoError(t, os.WriteFile(tier1.ArtifactPath(dir, stray), data, 0o644))
	r, logs, reg = start()
	defer r.close(t)
	require.Equal(t, 1, strings.Count(logs.String(), "tier1_unknown_artifact"), logs.String())
	require.Contains(t, logs.String(), filepath.Base(tier1.ArtifactPath(dir, stray)))
	require.Equal(t, 1.0, verifyProblems(t, reg, "unknown"))
	require.False(t, r.c.Warm().Contains(stray))
}
