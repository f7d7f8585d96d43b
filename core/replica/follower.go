package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/internal/metricset"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// Config configures a Follower.
type Config struct {
	// Store is the replica's store, opened with core.Config.Follower set
	// to Writer.Refusal.
	Store *core.Store
	// Remote is the prefix the writer uploads to.
	Remote *tier2.Store
	// Writer receives the prefix's writer, read at every listing, for the
	// error appends get.
	Writer *Writer
	// Interval is how often every stream's next key is polled; default 1 s.
	Interval time.Duration
	// ListInterval is how often the prefix is listed (new streams, bulk
	// catch-up, the writer's retention deletes); default 1 min. The first
	// poll always lists.
	ListInterval time.Duration
	// Concurrency bounds the segments described at once in a catch-up;
	// default 8.
	Concurrency int
	// Retire drops a stream's oldest segment once the writer's retention
	// deleted its object (coordinator.Coordinator.RetireFollowed); nil
	// keeps such segments (their reads then fail as data missing).
	Retire func(ctx context.Context, s *core.Stream, id types.SegmentID) error
	// SegmentSize is the writer's segment.size, which bounds the stubs of
	// lost segments; default segment.DefaultCapacity.
	SegmentSize int64
	Registerer  prometheus.Registerer
	Logger      hclog.Logger
	// Now is the clock of the lag metrics; default time.Now.
	Now func() time.Time
}

// Writer is the prefix's writer as a replica last read it; its Refusal
// is the error the replica's appends get (core.Config.Follower).
type Writer struct {
	p atomic.Pointer[types.ReplicaError]
}

// Refusal returns a *types.ReplicaError naming the writer.
func (w *Writer) Refusal() error {
	if e := w.p.Load(); e != nil {
		return e
	}
	return &types.ReplicaError{}
}

func (w *Writer) set(rec tier2.WriterRecord) {
	w.p.Store(&types.ReplicaError{Writer: fmt.Sprintf("node %s (%s)", rec.NodeID, rec.Host), Epoch: rec.Epoch})
}

// Follower follows every stream of a prefix into a replica's store.
type Follower struct {
	cfg Config
	log hclog.Logger
	ms  *metricset.Set

	// passMu serialises polls (Run's and Poll's).
	passMu sync.Mutex
	// mu guards streams and listed (started is set once by New).
	mu      sync.Mutex
	streams map[types.StreamID]*state
	listed  time.Time // the last successful listing
	started time.Time // New's time: the lag of a stream never caught up
}

// state is one stream's progress; guarded by Follower.mu.
type state struct {
	// caughtUp is when a poll last found nothing in tier 2 newer than
	// what the replica serves (zero: not yet).
	caughtUp time.Time
	// behind is the records tier 2 was seen to hold and the replica does
	// not serve yet.
	behind uint64
	// stalled is set while the next segment is missing and later ones
	// are not (ErrStalled).
	stalled error
	// mismatch is set while what tier 2 holds next does not continue
	// what the replica followed (core.ErrNotNext: after a takeover, an
	// object the replica followed that the new history counts lost); it
	// clears only when following goes on. The replica must be rebuilt.
	mismatch error
	// lost are the ids the last listing found recorded as lost.
	lost map[types.SegmentID]bool
}

// New validates cfg and registers the lag metrics.
func New(cfg Config) (*Follower, error) {
	if cfg.Store == nil || cfg.Remote == nil {
		return nil, &types.ConfigError{Key: "role", Reason: "a replica needs a store and a tier 2"}
	}
	if cfg.Writer == nil {
		cfg.Writer = &Writer{}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.ListInterval <= 0 {
		cfg.ListInterval = time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = segment.DefaultCapacity
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Follower{cfg: cfg, log: cfg.Logger, streams: map[types.StreamID]*state{}, started: cfg.Now()}
	var err error
	if f.ms, err = metricset.Register(cfg.Registerer, "replica", &lagCollector{f: f}); err != nil {
		return nil, err
	}
	return f, nil
}

// Close unregisters the metrics. Stop Run first (cancel its context).
func (f *Follower) Close() { f.ms.Unregister() }

// Run polls every Interval until ctx ends. A failed poll is logged and
// retried at the next tick: tier 2 being away delays the replica (its lag
// grows) and never stops it.
func (f *Follower) Run(ctx context.Context) {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		err := f.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			f.log.Warn("replica: following tier 2 failed; retrying every interval", "error", err)
			failing = true
		case err == nil && failing:
			f.log.Info("replica: following tier 2 recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll runs one pass: a listing when one is due, then every stream's
// next key until it is caught up. It returns the first failure (the other
// streams are still polled).
func (f *Follower) Poll(ctx context.Context) error {
	f.passMu.Lock()
	defer f.passMu.Unlock()
	var listings map[types.StreamID]*tier2.Listing
	var errs []error
	f.mu.Lock()
	due := f.listed.IsZero() || f.cfg.Now().Sub(f.listed) >= f.cfg.ListInterval
	f.mu.Unlock()
	if due {
		var err error
		if listings, err = f.list(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	st := f.cfg.Store
	for _, id := range st.Streams() {
		s, err := st.Lookup(id)
		if err != nil {
			continue // a broken stream: the store reports it
		}
		err = f.pollStream(ctx, s, listings[id])
		f.update(id, func(st *state) {
			switch {
			case errors.Is(err, core.ErrNotNext) && st.mismatch == nil:
				st.mismatch = fmt.Errorf("%w: stream %d: %w", ErrStalled, id, err)
				f.log.Error("replica: tier 2 does not continue what this replica followed (a takeover counted it lost); rebuild the replica (docs/tiering.md#read-replicas)",
					"stream_id", uint64(id), "error", err)
			case err == nil:
				st.mismatch = nil
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %d: %w", id, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// list reads the writer record, lists the prefix's streams (creating the
// ones the store lacks) and lists each stream.
func (f *Follower) list(ctx context.Context) (map[types.StreamID]*tier2.Listing, error) {
	r := f.cfg.Remote
	if rec, _, err := r.ReadWriter(ctx); err == nil {
		f.cfg.Writer.set(rec)
	} else if !errors.Is(err, pluginapi.ErrNotFound) {
		return nil, fmt.Errorf("read the writer record: %w", err)
	}
	ids, err := r.ListStreams(ctx)
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	out := map[types.StreamID]*tier2.Listing{}
	for _, id := range ids {
		if _, err := f.cfg.Store.FollowStream(id); err != nil {
			// A broken stream (the store reports it) or the stream limit:
			// the others are followed all the same.
			f.log.Warn("replica: cannot follow a stream", "stream_id", uint64(id), "error", err)
			continue
		}
		l, err := r.ListStream(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("list stream %d: %w", id, err)
		}
		out[id] = &l
	}
	f.mu.Lock()
	f.listed = f.cfg.Now()
	f.mu.Unlock()
	return out, nil
}

func (f *Follower) state(id types.StreamID) *state {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.streams[id]
	if st == nil {
		st = &state{}
		f.streams[id] = st
	}
	return st
}

// update changes a stream's state under the lock.
func (f *Follower) update(id types.StreamID, fn func(*state)) {
	st := f.state(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(st)
}
