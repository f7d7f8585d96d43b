package node

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// getRequests is aof_tier2_requests_total{class="GET",outcome}.
func getRequests(t *testing.T, reg *prometheus.Registry, outcome tier2.Outcome) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != "aof_tier2_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "class") == tier2.ClassGet.String() && label(m, "result") == outcome.String() {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// A cold read whose segment tier 2 cannot serve, through every layer the
// node assembles (the coordinator's hydration retry, the tier-2 store, the
// supervisor and a plugin process), costs a bounded number of backend
// requests, as docs/adr-tier2.md ("Retries and the breaker, end to end")
// says: a throttling backend gets the store's attempts and no more, since
// the hydration does not re-run what the store already retried honouring
// retry-after; a backend failing one object while the breaker stays closed
// gets (1 + HydrateRetries) × the store's attempts. The supervisor adds
// none, and each request is one HTTP request in the cloud plugins.
func TestFailingColdReadIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := testbin.Path(t, "aof2-plugin-fake")
	dir, faults := t.TempDir(), filepath.Join(t.TempDir(), "faults.json")
	require.NoError(t, fake.WriteFaultFile(faults, nil))

	const attempts, hydrateRetries = 6, 3 // the defaults, spelled out for the arithmetic
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	n, err := New(Options{
		DataDir: dir,
		Core:    core.Config{SegmentSize: segment.MinCapacity},
		Coordinator: coordinator.Config{ScanInterval: 10 * time.Millisecond, HydrateRetries: hydrateRetries, HydrateRetryDelay: time.Millisecond,
			Tier0: budget.Config{MaxBytes: 4 * segment.MinCapacity, Policy: budget.PolicyTier2}, Tier1: tier1.Config{MaxBytes: 1}},
		Plugin: &pluginhost.LaunchConfig{Path: bin, StartTimeout: 10 * time.Second, Logger: hclog.NewNullLogger(),
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"fault_file": faults}, StagingDir: dir}},
		// Only the breaker's threshold is raised, so that one object's
		// failures show the whole budget; waits are shortened.
		Tier2: tier2.Config{Backoff: tier2.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, Attempts: attempts},
			Breaker: tier2.BreakerConfig{Threshold: 1000}},
		Registerer: reg,
		Logger:     hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
	})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer n.Close(context.Background())

	s, err := n.Store().Stream(3)
	require.NoError(t, err)
	payload := bytes.Repeat([]byte("r"), 4000)
	for range 3000 { // ≈ 12 MiB: a dozen 1 MiB segments through a 4 MiB tier 0
		_, err := s.AppendCtx(ctx, payload, core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	var cold []dump.Segment
	require.Eventually(t, func() bool {
		d, err := n.View()
		require.NoError(t, err)
		cold = cold[:0]
		for _, g := range d.Streams[0].Segments {
			if g.Tier2 && !g.Tier0 && !g.Tier1 {
				cold = append(cold, g)
			}
		}
		return len(cold) >= 2
	}, time.Minute, 20*time.Millisecond, "two segments only in tier 2")

	read := func(g dump.Segment) error {
		rd, err := s.NewReader(core.AtID(core.MakeRecordID(core.SegmentID(g.ID), 64)))
		require.NoError(t, err)
		defer rd.Close()
		_, err = rd.NextCtx(ctx)
		return err
	}
	get := []fake.Op{fake.OpGet, fake.OpGetFile}
	cases := []struct {
		name    string
		fault   fake.Fault
		outcome tier2.Outcome
		want    error
		budget  float64
		event   string
	}{
		{"throttled", fake.Fault{Mode: fake.Throttle, RetryAfter: 5 * time.Millisecond, Ops: get}, tier2.OutcomeThrottled,
			pluginapi.ErrThrottled, attempts, "tier1_hydration_retry_unavailable"},
		{"5xx", fake.Fault{Mode: fake.ServerError, Ops: get}, tier2.OutcomeUnavailable,
			pluginapi.ErrUnavailable, (1 + hydrateRetries) * attempts, "tier1_hydration_retry_failed"},
	}
	for i, c := range cases {
		g := cold[i]
		c.fault.KeyPrefix = g.Tier2Key // only this read's object fails
		require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{c.fault}))
		before := getRequests(t, reg, c.outcome)
		err := read(g)
		require.ErrorIs(t, err, c.want, c.name)
		require.Equal(t, c.budget, getRequests(t, reg, c.outcome)-before, "%s: backend requests of one failing cold read", c.name)
		require.Contains(t, logs.String(), c.event, c.name)
		// The retries are logged once, then summarised (logthrottle); the
		// request budget above counts them.
		require.Equal(t, i > 0, strings.Contains(logs.String(), "tier1_hydration_retry_queued"), c.name)
	}

	require.NoError(t, fake.WriteFaultFile(faults, nil))
	require.NoError(t, read(cold[0]), "the segment reads once tier 2 serves it")
	require.Equal(t, 0, n.Supervisor().Restarts())
}
