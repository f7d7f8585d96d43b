package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/replica"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/host/cluster"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
	"github.com/aof2/aof2/plugins/fs"
)

// pluginEnv makes the test binary serve the fs backend as a plugin: the
// engine below runs its tier 2 under a real pluginhost.Supervisor (as the
// host does) without building a plugin binary.
const pluginEnv = "AOF2_DEPLOY_TEST_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(pluginEnv) == "fs" {
		pluginapi.Serve(fs.New(), pluginapi.ServeOptions{}) // exits
		return
	}
	os.Exit(m.Run())
}

// exportedMetric is one metric family the engine registers.
type exportedMetric struct {
	Type   dto.MetricType
	Labels map[string]bool
}

// recordingRegisterer registers on a real registry and remembers every
// collector, so that vectors with no child yet (no series in Gather, e.g.
// aof_would_block_total before the first WouldBlock) are still known by
// their descriptors.
type recordingRegisterer struct {
	*prometheus.Registry
	mu         sync.Mutex
	collectors []prometheus.Collector
}

// prefixRegisterer registers only the collectors with a metric whose name
// starts with prefix, and ignores the others.
type prefixRegisterer struct {
	prometheus.Registerer
	prefix string
}

func (p prefixRegisterer) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc)
	go func() { c.Describe(descs); close(descs) }()
	match := false
	for d := range descs {
		match = match || strings.Contains(d.String(), `fqName: "`+p.prefix)
	}
	if !match {
		return nil
	}
	return p.Registerer.Register(c)
}

func (p prefixRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := p.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.collectors = append(r.collectors, c)
	r.mu.Unlock()
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// engineMetrics opens the engine the way the host assembles it — the fs
// backend as a supervised plugin, tier 2 over it, a coordinator as the
// store's Cold, all on one registry — drives data through tier 0 → 1 → 2
// and back (several rollovers, a tiny tier-0 budget, uploads, evictions, a
// read that hydrates), and returns every metric family registered.
func engineMetrics(t *testing.T) (map[string]exportedMetric, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	self, err := os.Executable()
	require.NoError(t, err)
	dir, root := t.TempDir(), t.TempDir()
	reg := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	log := hclog.NewNullLogger()

	sup, err := pluginhost.NewSupervisor(ctx, pluginhost.SupervisorConfig{
		Launch: pluginhost.LaunchConfig{Name: "aof2-plugin-fs", Path: self, Env: []string{pluginEnv + "=fs"},
			StartTimeout: 30 * time.Second, Logger: log,
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"root": root}, StagingDir: dir}},
		Registerer: reg, Logger: log,
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, sup.Close(context.Background())) }()
	remote, err := tier2.New(sup, tier2.Config{Registerer: reg, Logger: log})
	require.NoError(t, err)
	defer func() { require.NoError(t, remote.Close(context.Background())) }()
	const segSize = segment.MinCapacity
	c, err := coordinator.New(coordinator.Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond,
		Tier0: budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2}, Registerer: reg, Logger: log})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	st, err := core.Open(dir, core.Config{SegmentSize: segSize, Tiering: c, Registerer: reg, Logger: log})
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	require.NoError(t, c.Start(ctx, st))
	// A read replica's metrics (core/replica). Its lag collector has
	// series only for streams it polled: one poll of the writer's own
	// store gives stream 42 one (the listing fails, this store is not a
	// follower; the stream's next key is polled all the same).
	f, err := replica.New(replica.Config{Store: st, Remote: remote, Registerer: reg, Logger: log})
	require.NoError(t, err)
	defer f.Close()
	// A cluster member's metrics (host/cluster): a one-node cluster over
	// a store of its own.
	cst, err := core.Open(t.TempDir(), core.Config{SegmentSize: segSize, TailReplayed: true, Logger: log})
	require.NoError(t, err)
	defer func() { require.NoError(t, cst.Close()) }()
	// The node WAL's metrics: a store of its own with the WAL on, whose
	// other metrics would clash with the first store's.
	wst, err := core.Open(t.TempDir(), core.Config{SegmentSize: segSize, Sync: core.SyncAlways, NodeWAL: true,
		Registerer: prefixRegisterer{Registerer: reg, prefix: "aof_node_wal_"}, Logger: log})
	require.NoError(t, err)
	defer func() { require.NoError(t, wst.Close()) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	raftAddr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cn, err := cluster.Open(cluster.Config{NodeID: "n1", RaftAddr: raftAddr, Peers: []cluster.Peer{{ID: "n1", Addr: raftAddr}},
		Dir: t.TempDir(), Registerer: reg, Logger: log}, cst)
	require.NoError(t, err)
	defer func() { require.NoError(t, cn.Close()) }()

	s, err := st.Stream(42)
	require.NoError(t, err)
	payload := make([]byte, 4000)
	const records = 1800 // ≈ 7 MiB: seven 1 MiB segments through a 3-segment tier 0
	for i := range records {
		copy(payload, fmt.Sprintf("record %06d", i))
		_, err := s.AppendCtx(ctx, payload, core.AppendOptions{})
		require.NoError(t, err, "record %d", i)
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx))
	require.Eventually(t, func() bool {
		for _, info := range s.SegmentList() {
			if ms, _ := s.TierLog().Segment(info.ID); !info.Resident && ms.Tier2.Key != "" {
				return true
			}
		}
		return false
	}, time.Minute, 10*time.Millisecond, "a segment is uploaded to tier 2 and evicted from tier 0")

	rd, err := s.NewReader(core.AtStart())
	require.NoError(t, err)
	n := 0
	for ; ; n++ {
		_, err := rd.NextCtx(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "record %d", n)
	}
	rd.Close()
	require.Equal(t, records, n, "every record reads back, evicted segments through hydration")
	_ = f.Poll(ctx)

	return collectMetrics(t, reg), scrape(t, reg)
}

// scrape is the registry in the text exposition format, as /metrics
// serves it.
func scrape(t *testing.T, g prometheus.Gatherer) []byte {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var b strings.Builder
	for _, mf := range mfs {
		_, err := expfmt.MetricFamilyToText(&b, mf)
		require.NoError(t, err)
	}
	return []byte(b.String())
}

// collectMetrics gathers the registry and adds the families that have no
// series yet from the registered collectors' descriptors.
func collectMetrics(t *testing.T, reg *recordingRegisterer) map[string]exportedMetric {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]exportedMetric{}
	for _, mf := range mfs {
		em := exportedMetric{Type: mf.GetType(), Labels: map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				em.Labels[lp.GetName()] = true
			}
		}
		out[mf.GetName()] = em
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, c := range reg.collectors {
		typ, typed := collectorType(c)
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			name, labels, err := parseDesc(d.String())
			require.NoError(t, err)
			em, seen := out[name]
			if !seen {
				require.True(t, typed, "%s has no series and a collector of unknown type %T", name, c)
				em = exportedMetric{Type: typ, Labels: map[string]bool{}}
			}
			for _, l := range labels {
				em.Labels[l] = true
			}
			out[name] = em
		}
	}
	return out
}

func collectorType(c prometheus.Collector) (dto.MetricType, bool) {
	switch c.(type) {
	case *prometheus.CounterVec:
		return dto.MetricType_COUNTER, true
	case *prometheus.GaugeVec:
		return dto.MetricType_GAUGE, true
	case *prometheus.HistogramVec:
		return dto.MetricType_HISTOGRAM, true
	case *prometheus.SummaryVec:
		return dto.MetricType_SUMMARY, true
	}
	return 0, false
}

// parseDesc reads the metric name and variable labels out of
// prometheus.Desc.String(), the only exported view of them:
// Desc{fqName: "x", help: "...", unit: "", constLabels: {...}, variableLabels: {a,c(b)}}.
func parseDesc(s string) (name string, labels []string, err error) {
	const pfx = "Desc{fqName: "
	if !strings.HasPrefix(s, pfx) {
		return "", nil, fmt.Errorf("unexpected descriptor %q", s)
	}
	q, err := strconv.QuotedPrefix(s[len(pfx):])
	if err != nil {
		return "", nil, fmt.Errorf("descriptor %q: %w", s, err)
	}
	if name, err = strconv.Unquote(q); err != nil {
		return "", nil, err
	}
	const vl = "variableLabels: {"
	k := strings.LastIndex(s, vl)
	if k < 0 || !strings.HasSuffix(s, "}}") {
		return "", nil, fmt.Errorf("descriptor %q: no variable labels", s)
	}
	for l := range strings.SplitSeq(s[k+len(vl):len(s)-2], ",") {
		l = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(l), "c("), ")")
		if l != "" {
			labels = append(labels, l)
		}
	}
	sort.Strings(labels)
	return name, labels, nil
}

func TestParseDesc(t *testing.T) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: `a "quoted}" help, variableLabels: {no}}`}, []string{"op", "kind"})
	ch := make(chan *prometheus.Desc, 1)
	v.Describe(ch)
	name, labels, err := parseDesc((<-ch).String())
	require.NoError(t, err)
	require.Equal(t, "x_total", name)
	require.Equal(t, []string{"kind", "op"}, labels)
	_, _, err = parseDesc("Desc{oops}")
	require.Error(t, err)
}
