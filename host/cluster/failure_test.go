package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/internal/testwait"
)

// copyDir copies a directory tree as it is now: an open store copied so
// is what a kill -9 leaves (page cache and all).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, src)
		return err
	}))
}

func rec1(p string) []Record { return []Record{{Timestamp: 1, Payload: []byte(p)}} }

// A kill -9 right after a seal (the next segment id reserved, its file
// never written) must not make the replay append the stream again, nor
// move the next records to another segment id.
func TestKillAfterSealReplaysOnce(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	st := openStore(t, a)
	defer st.Close()
	log := []*raft.Log{
		entry(1, appendCommand(1, []Record{{Timestamp: 1, Payload: []byte("a")}, {Timestamp: 1, Payload: []byte("b")}})),
		entry(2, command{kind: kindSeal, stream: 1}),
	}
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	f.ApplyBatch(log)
	next := entry(3, appendCommand(1, rec1("c")))
	s, err := st.Lookup(1)
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool {
		in := s.Info()
		return in.Sealed == 1 && in.Prepared == 2
	}, "segment 1 sealed, the next id reserved by the preparer")
	copyDir(t, a, b)
	f.ApplyBatch([]*raft.Log{next})
	want := readAll(t, st, 1)

	stB := openStore(t, b)
	defer stB.Close()
	fB := newFSM(context.Background(), stB, hclog.NewNullLogger())
	fB.ApplyBatch(append(log, next))
	require.Equal(t, want, readAll(t, stB, 1))
}

// Entries every node refuses alike (a stream over limits.max_streams, an
// empty record) fail on their own; applying goes on.
func TestRefusedEntriesDoNotStopApplying(t *testing.T) {
	st, err := core.Open(t.TempDir(), core.Config{SegmentSize: segment.MinCapacity, TailReplayed: true, MaxStreams: 1})
	require.NoError(t, err)
	defer st.Close()
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	res := f.ApplyBatch([]*raft.Log{
		entry(1, appendCommand(1, rec1("a"))),
		entry(2, appendCommand(2, rec1("over the limit"))),
		entry(3, appendCommand(1, []Record{{Timestamp: 1, Payload: []byte("x")}, {Timestamp: 1}})),
		entry(4, appendCommand(1, rec1("b"))),
	})
	require.ErrorIs(t, res[1].(*appliedEntry).Groups[0].Err, core.ErrTooManyStreams)
	require.ErrorIs(t, res[2].(*appliedEntry).Groups[0].Err, core.ErrEmptyRecord)
	require.NotErrorIs(t, res[1].(*appliedEntry).Groups[0].Err, ErrFSMFailed)
	require.Len(t, res[3].(*appliedEntry).Groups[0].IDs, 1)
	require.NoError(t, f.err())
	require.Equal(t, []string{"a", "b"}, payloads(readAll(t, st, 1)))
	require.Equal(t, uint64(4), f.applied.Load())
}

// After applying stopped, a linearizable read fails instead of reading a
// store that misses committed entries.
func TestReadBarrierFailsAfterApplyingStopped(t *testing.T) {
	c := newTestCluster(t, 1, LogStoreBolt)
	l := c.leader()
	l.node.fsm.fail(io.ErrUnexpectedEOF)
	require.ErrorIs(t, l.node.ReadBarrier(context.Background()), ErrFSMFailed)
	_, err := l.node.Append(context.Background(), 1, rec1("x"))
	require.ErrorIs(t, err, ErrFSMFailed)
}

// Close answers every Append in flight (raft never answers futures still
// queued at shutdown): none stays blocked.
func TestCloseAnswersAppendsInFlight(t *testing.T) {
	c := newTestCluster(t, 1, LogStoreBolt)
	l := c.leader()
	var wg sync.WaitGroup
	var appended atomic.Int64
	for range 32 {
		wg.Go(func() {
			for {
				if _, err := l.node.Append(context.Background(), 1, records("x", 3)); err != nil {
					return
				}
				appended.Add(1)
			}
		})
	}
	// Close once appends are flowing, so that some are in flight.
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return appended.Load() >= 64 }, "appends flowing")
	node := l.node
	require.NoError(t, node.Close())
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("appends still blocked 10s after Close")
	}
	_, err := node.Append(context.Background(), 1, rec1("late"))
	require.ErrorIs(t, err, core.ErrClosed)
}

// A snapshot that covers a Seal this node never applied (same records)
// seals the stream on restore, so that the next records get the ids the
// other nodes give them.
func TestRestoreAppliesAMissedSeal(t *testing.T) {
	stA := openStore(t, t.TempDir())
	defer stA.Close()
	stB := openStore(t, t.TempDir())
	defer stB.Close()
	fA := newFSM(context.Background(), stA, hclog.NewNullLogger())
	fB := newFSM(context.Background(), stB, hclog.NewNullLogger())
	fA.ApplyBatch([]*raft.Log{entry(1, appendCommand(1, rec1("a"))), entry(2, command{kind: kindSeal, stream: 1})})
	fB.ApplyBatch([]*raft.Log{entry(1, appendCommand(1, rec1("a")))})
	snap, err := fA.Snapshot()
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	require.NoError(t, fB.Restore(io.NopCloser(&sink.buf)))
	fA.ApplyBatch([]*raft.Log{entry(3, appendCommand(1, rec1("b")))})
	fB.ApplyBatch([]*raft.Log{entry(3, appendCommand(1, rec1("b")))})
	require.Equal(t, readAll(t, stA, 1), readAll(t, stB, 1))
}

type memSink struct{ buf bytes.Buffer }

func (s *memSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *memSink) Close() error                { return nil }
func (s *memSink) ID() string                  { return "mem" }
func (s *memSink) Cancel() error               { return nil }

func TestClusterMetrics(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	l := c.leader()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(newCollector(l.node)))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	require.Len(t, got, 13)
	require.Contains(t, got, "aof_cluster_tails_rewound_total")
	require.Contains(t, got, "aof_cluster_tier_moves_total")
	require.Contains(t, got, "aof_cluster_drops_total")
	require.Contains(t, got, "aof_cluster_catchup_bytes_total")
	require.Contains(t, got, "aof_cluster_snapshot_index")
	require.Contains(t, got, "aof_cluster_tier_moves_unmatched_total")
	require.Equal(t, 1.0, got["aof_cluster_leader"])
	require.Equal(t, 3.0, got["aof_cluster_members"])
	require.Zero(t, got["aof_cluster_apply_failed"])
	require.Positive(t, got["aof_cluster_term"])
}

// refusingLogs is a log store that, while refusing, fails every third
// StoreLogs: the follower answers that AppendEntries with Success=false.
type refusingLogs struct {
	raft.LogStore
	refusing atomic.Bool
	calls    atomic.Int64
	refused  atomic.Int64
}

func (l *refusingLogs) StoreLogs(logs []*raft.Log) error {
	if l.refusing.Load() && l.calls.Add(1)%3 == 0 {
		l.refused.Add(1)
		return errors.New("refused by the test")
	}
	return l.LogStore.StoreLogs(logs)
}

func (l *refusingLogs) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// TestFollowerRefusingEntriesKeepsReplicating: a follower that answers
// AppendEntries with Success=false now and then, under a steady stream of
// appends, is retried and catches up, and every node closes. (With
// hashicorp/raft's pipelined replication, such an answer can leave the
// leader's sender to that follower blocked for ever: rpcsInFlight.)
func TestFollowerRefusingEntriesKeepsReplicating(t *testing.T) {
	logs := map[string]*refusingLogs{}
	c := newTestClusterWith(t, 3, LogStoreBolt, func(n *testNode) {
		l := &refusingLogs{LogStore: raft.NewInmemStore()}
		logs[n.id], n.logs = l, l
	})
	l := c.leader()
	f := logs[c.followers(l)[0].id]
	f.refusing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 60 {
				_, err := l.node.Append(ctx, 1, rec1(fmt.Sprintf("w%d-%d", w, i)))
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	f.refusing.Store(false)
	require.Positive(t, f.refused.Load(), "the follower refused some entries")
	require.Len(t, c.requireSame(1)[1], 16*60)
	for _, n := range c.nodes {
		done := make(chan error, 1)
		node := n.node
		n.node = nil
		go func() { done <- node.Close() }()
		testwait.Recv(t, done, shutdownGrace+testwait.Default, "%s to close", n.id)
	}
}

// stuckLogs blocks every write once stuck is set, until release closes:
// a log store whose disk hangs.
type stuckLogs struct {
	raft.LogStore
	stuck   atomic.Bool
	entered chan struct{} // gets a value each time a write hangs
	release chan struct{}
}

func (l *stuckLogs) StoreLogs(logs []*raft.Log) error {
	if l.stuck.Load() {
		select {
		case l.entered <- struct{}{}:
		default:
		}
		<-l.release
	}
	return l.LogStore.StoreLogs(logs)
}

func (l *stuckLogs) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// TestCloseGivesUpOnAStuckRaft: a node whose Raft cannot stop (its log
// store hangs in a write) does not hang Close: after the grace period
// and the cancelled apply's grace, Close returns errShutdownStuck.
func TestCloseGivesUpOnAStuckRaft(t *testing.T) {
	defer func(g time.Duration) { shutdownGrace = g }(shutdownGrace)
	shutdownGrace = 200 * time.Millisecond
	l := &stuckLogs{LogStore: raft.NewInmemStore(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(l.release) // lets the leaked raft goroutines end
	c := newTestClusterWith(t, 1, LogStoreBolt, func(n *testNode) { n.logs = l })
	n := c.leader()
	l.stuck.Store(true)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = n.node.Append(ctx, 1, records("x", 1)) // the write that hangs
	}()
	select {
	case <-l.entered: // raft is inside the write that hangs
	case <-time.After(30 * time.Second):
		t.Fatal("the append never reached the log store")
	}
	closed := make(chan error, 1)
	go func() { closed <- n.node.Close() }()
	select {
	case err := <-closed:
		require.ErrorIs(t, err, errShutdownStuck)
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs on a raft that cannot stop")
	}
	n.node = nil // closed (as far as it goes): the cluster's cleanup skips it
}
