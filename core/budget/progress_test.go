package budget

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testseed"
)

// The progress model: the real Budget driven by a small model of the
// engine (core/rollover.go) and the coordinator (core/coordinator), to
// check the rule of docs/adr-tier0.md "Progress: no request sequence needs
// an operator". A seeded explorer walks random interleavings of client
// requests (appends that create streams and roll segments over, explicit
// seals, reads, hydrations of evicted segments, tier-2 outages, streams
// failing on I/O errors, a full disk) and background work (seals
// completing, compressions, uploads, evictions, seal jobs, scans). After
// every step it checks, on a copy of the state, that letting the
// background work run to quiescence and retrying is enough for every
// writer's next append (every stream's, and a new stream's first) and
// every refused hydration to be admitted: no state needs an operator.
// Every eviction, whoever asked for it (an admission, a scan, disk
// pressure), must be of a sealed segment another tier holds.

// rules are the progress rules under test; the zero value is the code
// before issue 12.
type rules struct {
	sealOnRefusal bool // engine: a refused rollover seals its full segment (P1)
	pressure      bool // coordinator: RequestSeals on refusal and at scans, seal jobs (P2–P4)
}

var fixed = rules{sealOnRefusal: true, pressure: true}

type segState uint8

const (
	segActive segState = iota
	segSealing
	segSealed
	segEvicted
)

type pSeg struct {
	bytes      int64
	state      segState
	records    int
	inT1, inT2 bool
}

type pStream struct {
	id              types.StreamID
	next            types.SegmentID // id of the next segment
	active, sealing types.SegmentID // 0: none
	failed          bool
	segs            map[types.SegmentID]*pSeg
}

// psys is the modelled node.
type psys struct {
	r         rules
	cfg       Config
	b         *Budget
	perSeg    int // records per segment
	sizes     []int64
	streams   map[types.StreamID]*pStream
	tier2Down bool
	sealJobs  map[types.SegmentKey]bool
	evictJobs map[types.SegmentKey]bool
	pins      map[types.SegmentKey]int // hydrations holding a budget pin
}

func (p *psys) size(s *pStream, id types.SegmentID) int64 {
	return p.sizes[(uint64(s.id)+uint64(id))%uint64(len(p.sizes))]
}

func (p *psys) stream(id types.StreamID) *pStream {
	s, ok := p.streams[id]
	if !ok {
		s = &pStream{id: id, next: 1, segs: map[types.SegmentID]*pSeg{}}
		p.streams[id] = s
	}
	return s
}

func (p *psys) streamIDs() []types.StreamID {
	ids := make([]types.StreamID, 0, len(p.streams))
	for id := range p.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func sortedKeys(m map[types.SegmentKey]bool) []types.SegmentKey {
	ks := make([]types.SegmentKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b types.SegmentKey) int {
		if a.Stream != b.Stream {
			return cmpTick(uint64(a.Stream), uint64(b.Stream))
		}
		return cmpTick(uint64(a.Segment), uint64(b.Segment))
	})
	return ks
}

var (
	errBlocked = errors.New("blocked")
	errFailed  = errors.New("stream failed")
	errStuck   = errors.New("no progress without an operator")
	errUnsafe  = errors.New("evicted a segment no other tier holds")
)

func ignoreGone(err error) error {
	if errors.Is(err, ErrEvicting) || errors.Is(err, ErrUnknownSegment) {
		return nil
	}
	return err
}

// appendRec is the engine's append (appendLocked + rolloverLocked) and the
// coordinator's AdmitSegment.
func (p *psys) appendRec(id types.StreamID) error {
	s := p.stream(id)
	if s.failed {
		return errFailed
	}
	if a := s.segs[s.active]; s.active != 0 && a.records < p.perSeg {
		a.records++
		return nil
	}
	if s.sealing != 0 {
		return errBlocked // WouldBlock(Rollover): the previous seal first
	}
	k := types.SegmentKey{Stream: id, Segment: s.next}
	req := Request{Key: k, Bytes: p.size(s, s.next), Active: true, Priority: PriorityForeground}
	g, err := p.b.TryAdmit(req)
	switch {
	case err == nil:
		for _, c := range g.Evict {
			p.evictJobs[c.Key] = true
		}
	case errors.Is(err, types.ErrWouldBlock):
		if p.r.sealOnRefusal && s.active != 0 {
			s.sealing, s.active = s.active, 0
			s.segs[s.sealing].state = segSealing
		}
		if p.r.pressure {
			for _, c := range p.b.RequestSeals(req) {
				p.sealJobs[c.Key] = true
			}
		}
		return errBlocked
	default:
		return err
	}
	if s.active != 0 {
		s.sealing = s.active
		s.segs[s.sealing].state = segSealing
	}
	s.active, s.next = s.next, s.next+1
	s.segs[s.active] = &pSeg{bytes: req.Bytes, state: segActive, records: 1}
	return nil
}

// seal is Stream.Seal without the wait.
func (p *psys) seal(id types.StreamID) {
	s := p.stream(id)
	if !s.failed && s.active != 0 && s.sealing == 0 {
		s.sealing, s.active = s.active, 0
		s.segs[s.sealing].state = segSealing
	}
}

// hydrate is a reader asking for an evicted segment (the coordinator's
// Hydrate; refused, it waits in the queue and the scan asks for seals).
func (p *psys) hydrate(k types.SegmentKey) error {
	g := p.streams[k.Stream].segs[k.Segment]
	if g.state != segEvicted {
		return nil
	}
	req := Request{Key: k, Bytes: g.bytes, InTier1: g.inT1, InTier2: g.inT2, Pin: true, Priority: PriorityForeground}
	gr, err := p.b.TryAdmit(req)
	if err != nil {
		if p.r.pressure && errors.Is(err, types.ErrWouldBlock) {
			for _, c := range p.b.RequestSeals(req) {
				p.sealJobs[c.Key] = true
			}
		}
		return err
	}
	for _, c := range gr.Evict {
		p.evictJobs[c.Key] = true
	}
	g.state = segSealed
	p.pins[k]++
	return nil
}

// background returns the background actions enabled now, in a fixed
// order; each one changes the state when applied.
func (p *psys) background() []string {
	var acts []string
	if p.tier2Down {
		acts = append(acts, "tier2-up")
	}
	for _, id := range p.streamIDs() {
		s := p.streams[id]
		if s.sealing != 0 && !s.failed {
			acts = append(acts, fmt.Sprintf("seal-done %d", id))
		}
		var segs []types.SegmentID
		for sid := range s.segs {
			segs = append(segs, sid)
		}
		slices.Sort(segs)
		for _, sid := range segs {
			g := s.segs[sid]
			switch {
			case g.state == segSealed && !g.inT1:
				acts = append(acts, fmt.Sprintf("compress %d %d", id, sid))
			case g.state != segActive && g.state != segSealing && g.inT1 && !g.inT2 && !p.tier2Down:
				acts = append(acts, fmt.Sprintf("upload %d %d", id, sid))
			}
		}
	}
	for _, k := range sortedKeys(p.sealJobs) {
		acts = append(acts, fmt.Sprintf("seal-job %d %d", k.Stream, k.Segment))
	}
	for _, k := range sortedKeys(p.evictJobs) {
		acts = append(acts, fmt.Sprintf("evict %d %d", k.Stream, k.Segment))
	}
	pinned := map[types.SegmentKey]bool{}
	for k := range p.pins {
		pinned[k] = true
	}
	for _, k := range sortedKeys(pinned) {
		acts = append(acts, fmt.Sprintf("unpin %d %d", k.Stream, k.Segment))
	}
	return append(acts, "scan")
}

// apply runs one background action.
func (p *psys) apply(act string) error {
	var id, sid uint64
	f := strings.Fields(act)
	if len(f) == 3 {
		_, _ = fmt.Sscan(f[1], &id)
		_, _ = fmt.Sscan(f[2], &sid)
	} else if len(f) == 2 {
		_, _ = fmt.Sscan(f[1], &id)
	}
	k := types.SegmentKey{Stream: types.StreamID(id), Segment: types.SegmentID(sid)}
	switch f[0] {
	case "tier2-up":
		p.tier2Down = false
	case "seal-done": // sealPending, then the coordinator's SegmentSealed
		s := p.streams[k.Stream]
		k.Segment = s.sealing
		s.segs[s.sealing].state = segSealed
		s.sealing = 0
		return p.b.Seal(k)
	case "compress": // the coordinator ignores a segment being evicted or gone
		p.streams[k.Stream].segs[k.Segment].inT1 = true
		return ignoreGone(p.b.MarkInTier1(k))
	case "upload":
		p.streams[k.Stream].segs[k.Segment].inT2 = true
		return ignoreGone(p.b.MarkInTier2(k))
	case "seal-job": // Stream.SealActive, then SealAbandoned if it cannot
		delete(p.sealJobs, k)
		s := p.streams[k.Stream]
		switch {
		case s.failed:
			return ignoreGone(p.b.SealAbandoned(k))
		case s.active == k.Segment && s.sealing == 0:
			p.seal(k.Stream)
		}
	case "evict":
		delete(p.evictJobs, k)
		g := p.streams[k.Stream].segs[k.Segment]
		if g.state != segSealed || !(g.inT2 || (p.cfg.Policy == PolicyTier1 && g.inT1)) {
			return fmt.Errorf("%w: %s (state %d, in tier 1 %v, in tier 2 %v, policy %s)", errUnsafe, k, g.state, g.inT1, g.inT2, p.cfg.Policy)
		}
		g.state = segEvicted
		return p.b.Removed(k)
	case "unpin":
		if p.pins[k]--; p.pins[k] == 0 {
			delete(p.pins, k)
		}
		return p.b.Unpin(k)
	case "scan":
		for _, c := range p.b.Reclaim() {
			p.evictJobs[c.Key] = true
		}
		if p.r.pressure {
			for _, c := range p.b.RequestSeals() {
				p.sealJobs[c.Key] = true
			}
		}
	default:
		return fmt.Errorf("unknown action %q", act)
	}
	return nil
}

// fingerprint identifies a state (for the distinct-state count and to
// detect quiescence).
func (p *psys) fingerprint() string {
	buf := make([]byte, 0, 256)
	num := func(v uint64) { buf = strconv.AppendUint(append(buf, ','), v, 10) }
	flag := func(v bool) {
		if v {
			buf = append(buf, 't')
		} else {
			buf = append(buf, 'f')
		}
	}
	for _, e := range p.b.Entries() {
		num(uint64(e.Key.Stream))
		num(uint64(e.Key.Segment))
		buf = append(buf, e.State[0])
		num(uint64(e.Pins))
		flag(e.InTier1)
		flag(e.InTier2)
	}
	for _, id := range p.streamIDs() {
		s := p.streams[id]
		buf = append(buf, '|')
		num(uint64(id))
		num(uint64(s.next))
		num(uint64(s.active))
		num(uint64(s.sealing))
		flag(s.failed)
		if a := s.segs[s.active]; a != nil {
			num(uint64(a.records))
		}
	}
	for _, set := range []map[types.SegmentKey]bool{p.sealJobs, p.evictJobs} {
		buf = append(buf, '|')
		for _, k := range sortedKeys(set) {
			num(uint64(k.Stream))
			num(uint64(k.Segment))
		}
	}
	flag(p.tier2Down)
	return string(buf)
}

// quiesce runs every background action until none changes anything.
func (p *psys) quiesce() error {
	before := p.fingerprint()
	for pass := 0; pass < 1000; pass++ {
		for _, act := range p.background() {
			if err := p.apply(act); err != nil {
				return fmt.Errorf("%s: %w", act, err)
			}
		}
		after := p.fingerprint()
		if after == before {
			return nil
		}
		before = after
	}
	return errors.New("background work does not settle")
}

// clone copies the system, the budget included.
func (p *psys) clone() *psys {
	c := *p
	c.b = cloneBudget(p.b)
	c.streams = map[types.StreamID]*pStream{}
	for id, s := range p.streams {
		ns := *s
		ns.segs = map[types.SegmentID]*pSeg{}
		for sid, g := range s.segs {
			ng := *g
			ns.segs[sid] = &ng
		}
		c.streams[id] = &ns
	}
	c.sealJobs, c.evictJobs = maps(p.sealJobs), maps(p.evictJobs)
	c.pins = map[types.SegmentKey]int{}
	for k, v := range p.pins {
		c.pins[k] = v
	}
	return &c
}

func maps(m map[types.SegmentKey]bool) map[types.SegmentKey]bool {
	out := make(map[types.SegmentKey]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// cloneBudget copies a budget's accounting (the model never queues).
func cloneBudget(b *Budget) *Budget {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.q.len() > 0 {
		panic("cloneBudget: queued activations")
	}
	// The copy shares the metrics (the model does not look at them).
	c := &Budget{cfg: b.cfg, log: b.log, m: b.m}
	c.mu.entries = make(map[types.SegmentKey]*entry, len(b.mu.entries))
	c.mu.streams = make(map[types.StreamID]*streamState, len(b.mu.streams))
	c.mu.actives = make(map[types.SegmentKey]*entry, len(b.mu.actives))
	c.mu.lru.global = true
	c.mu.q.init()
	c.mu.maxBytes, c.mu.streamMax, c.mu.tick = b.mu.maxBytes, b.mu.streamMax, b.mu.tick
	for id, st := range b.mu.streams {
		ns := c.streamLocked(id)
		ns.limit, ns.hasLimit = st.limit, st.hasLimit
	}
	for k, e := range b.mu.entries {
		ne := &entry{key: k, bytes: e.bytes, state: e.state, pins: e.pins, inTier1: e.inTier1, inTier2: e.inTier2,
			tick: e.tick, sealReq: e.sealReq, gidx: -1, sidx: -1}
		st := c.streamLocked(k.Stream)
		c.mu.entries[k] = ne
		st.entries++
		if ne.state == stateEvicting {
			c.mu.evictingBytes += ne.bytes
		} else {
			c.countLocked(st, ne.bytes)
		}
		c.syncEligLocked(ne)
		if ne.state == stateActive {
			c.enterActiveLocked(ne)
		}
	}
	return c
}

// progress checks, on copies, that background work and retries admit
// every stream's next append (and a new stream's first) and every refused
// hydration. It returns what cannot progress.
func (p *psys) progress(newStream types.StreamID, readers []types.SegmentKey) error {
	rounds := 2*len(p.streams) + 4
	try := func(what string, do func(*psys) error) error {
		c := p.clone()
		for range rounds {
			if err := c.quiesce(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			err := do(c)
			if err == nil {
				return nil
			}
			if !errors.Is(err, errBlocked) && !errors.Is(err, types.ErrWouldBlock) {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		return fmt.Errorf("%w: %s stays blocked after %d rounds of background work and retries", errStuck, what, rounds)
	}
	ids := append(p.streamIDs(), newStream)
	for _, id := range ids {
		if s := p.streams[id]; s != nil && s.failed {
			continue
		}
		if err := try(fmt.Sprintf("append to stream %d", id), func(c *psys) error { return c.appendRec(id) }); err != nil {
			return err
		}
	}
	for _, k := range readers {
		if p.streams[k.Stream].failed {
			continue // its unsealed segments hold its cap until the store is reopened
		}
		if err := try(fmt.Sprintf("hydration of %s", k), func(c *psys) error { return c.hydrate(k) }); err != nil {
			return err
		}
	}
	return nil
}

// walkStats counts what an exploration covered.
type walkStats struct {
	walks, steps, checks int
	states               map[string]bool
}

// walk explores one random interleaving and returns the first state that
// cannot progress (with the steps that led to it), or nil.
func walk(t testing.TB, r rules, rng *rand.Rand, steps int, st *walkStats) error {
	t.Helper()
	const segMiB = 1 << 20
	cfg := Config{MaxBytes: int64(2+rng.IntN(4)) * segMiB, Policy: Policy(rng.IntN(2))}
	sizes := []int64{segMiB}
	if rng.IntN(3) == 0 {
		sizes = []int64{segMiB, segMiB / 2, segMiB, 2 * segMiB}
		cfg.MaxBytes += segMiB
	}
	if rng.IntN(3) == 0 {
		cfg.StreamMaxBytes = int64(2+rng.IntN(2)) * segMiB
	}
	b, err := New(cfg)
	require.NoError(t, err)
	p := &psys{r: r, cfg: cfg, b: b, perSeg: 1 + rng.IntN(3), sizes: sizes, streams: map[types.StreamID]*pStream{},
		sealJobs: map[types.SegmentKey]bool{}, evictJobs: map[types.SegmentKey]bool{}, pins: map[types.SegmentKey]int{}}
	nStreams := 2 + rng.IntN(5)
	var trace []string
	readers := map[types.SegmentKey]bool{}
	failedBytes := int64(0)
	st.walks++
	for step := range steps {
		var act string
		bg := p.background()
		switch x := rng.IntN(21); {
		case x < 8:
			id := types.StreamID(1 + rng.IntN(nStreams))
			act = fmt.Sprintf("append %d", id)
			_ = p.appendRec(id)
		case x < 9:
			id := types.StreamID(1 + rng.IntN(nStreams))
			act = fmt.Sprintf("seal %d", id)
			p.seal(id)
		case x < 10 && len(p.streams) > 0:
			ids := p.streamIDs()
			s := p.streams[ids[rng.IntN(len(ids))]]
			if len(s.segs) == 0 {
				continue
			}
			sid := types.SegmentID(1 + rng.IntN(int(s.next-1)))
			k := types.SegmentKey{Stream: s.id, Segment: sid}
			switch g := s.segs[sid]; g.state {
			case segEvicted:
				act = fmt.Sprintf("hydrate %s", k)
				if err := p.hydrate(k); err != nil {
					readers[k] = true
				} else {
					delete(readers, k)
				}
			default:
				act = fmt.Sprintf("read %s", k)
				require.NoError(t, ignoreGone(p.b.Touch(k))) // SegmentRead ignores errors
			}
		case x < 11 && cfg.Policy == PolicyTier2:
			act = "tier2-down"
			p.tier2Down = true
		case x < 12 && rng.IntN(8) == 0:
			// An I/O error stops a stream; its unsealed segments stay
			// counted until the store is reopened. Only as long as the
			// rest of the budget holds the largest segment: beyond that
			// the node needs an operator for the I/O error, not for a
			// request sequence.
			id := types.StreamID(1 + rng.IntN(nStreams))
			s := p.stream(id)
			add := int64(0)
			for _, sid := range []types.SegmentID{s.active, s.sealing} {
				if g := s.segs[sid]; sid != 0 {
					add += g.bytes
				}
			}
			if s.failed || failedBytes+add+slices.Max(sizes) > cfg.MaxBytes {
				continue
			}
			failedBytes += add
			s.failed = true
			act = fmt.Sprintf("fail %d", id)
		case x == 20:
			// The disk is full (ENOSPC or above the high watermark): the
			// coordinator evicts what other tiers hold, whatever max_bytes
			// is (relieveDisk). The evictions must be safe ("evict"
			// checks) and must not get in the way of progress.
			n := int64(1+rng.IntN(3)) * segMiB
			act = fmt.Sprintf("disk-full %d", n>>20)
			for _, c := range p.b.ReclaimBytes(n) {
				p.evictJobs[c.Key] = true
			}
		default:
			act = bg[rng.IntN(len(bg))]
			require.NoError(t, p.apply(act), "step %d: %s", step, act)
		}
		trace = append(trace, act)
		st.steps++
		if err := invariants(p.b); err != nil {
			return fmt.Errorf("after %v: %w", trace, err)
		}
		for k := range readers {
			if p.streams[k.Stream].segs[k.Segment].state != segEvicted {
				delete(readers, k)
			}
		}
		st.states[p.fingerprint()] = true
		st.checks++
		rs := sortedKeys(readers)
		if err := p.progress(types.StreamID(nStreams+1), rs); err != nil {
			return fmt.Errorf("config max=%d stream_max=%d policy=%s sizes=%v records/segment=%d\nsteps: %s\n%w",
				cfg.MaxBytes>>20, cfg.StreamMaxBytes>>20, cfg.Policy, sizes, p.perSeg, strings.Join(trace, ", "), err)
		}
	}
	return nil
}

// TestProgressModel explores random request and background interleavings
// with the issue-12 rules and requires progress after every step. Seeded
// (AOF2_PROGRESS_SEED replays a failure); AOF2_PROGRESS_WALKS sets the
// number of walks.
func TestProgressModel(t *testing.T) {
	seed := testseed.From(t, "AOF2_PROGRESS_SEED")
	walks, steps := 300, 150
	switch {
	case testing.Short():
		walks = 40
	case raceEnabled:
		walks = 60 // the same walks are five times slower
	}
	if n := envInt(t, "AOF2_PROGRESS_WALKS"); n > 0 {
		walks = n
	}
	st := &walkStats{states: map[string]bool{}}
	start := time.Now()
	for w := range walks {
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		if err := walk(t, fixed, rng, steps, st); err != nil {
			t.Fatalf("walk %d: no progress without an operator:\n%v", w, err)
		}
	}
	t.Logf("%d walks, %d steps, %d progress checks, %d distinct states in %s",
		st.walks, st.steps, st.checks, len(st.states), time.Since(start).Round(time.Millisecond))
}

// TestProgressModelFindsOldLivelocks: the explorer is sharp enough to find
// the livelocks of the code before issue 12 (no rule, F1), and the
// new-stream livelock that sealing on refusal alone leaves (F2). Pressure
// seals alone are enough for progress (they ask for the requester's own
// full segment too, through a seal job); sealing on refusal saves that
// round trip through the coordinator's queue.
func TestProgressModelFindsOldLivelocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    rules
		live bool
	}{{"before issue 12", rules{}, false}, {"seal on refusal only", rules{sealOnRefusal: true}, false},
		{"pressure only", rules{pressure: true}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			st := &walkStats{states: map[string]bool{}}
			walks := 60
			if tc.live && testing.Short() {
				walks = 10
			}
			for w := range walks {
				rng := rand.New(rand.NewPCG(1, uint64(w)))
				err := walk(t, tc.r, rng, 150, st)
				if err == nil {
					continue
				}
				require.ErrorIs(t, err, errStuck)
				require.False(t, tc.live, "walk %d: %v", w, err)
				t.Logf("found after %d walks: %v", w+1, firstLines(err.Error(), 3))
				return
			}
			require.True(t, tc.live, "no livelock found in %d walks without the rule", walks)
		})
	}
}

// TestProgressIssue12Sequence replays the issue's sequence (segment 1 MiB,
// budget 2 MiB, two records per segment; appends to streams 1, 2, 1, 1):
// stuck before, served after.
func TestProgressIssue12Sequence(t *testing.T) {
	for _, tc := range []struct {
		r     rules
		stuck bool
	}{{rules{}, true}, {fixed, false}} {
		b := newBudget(t, Config{MaxBytes: 2 * mib, Policy: PolicyTier2})
		p := &psys{r: tc.r, b: b, perSeg: 2, sizes: []int64{mib}, streams: map[types.StreamID]*pStream{},
			sealJobs: map[types.SegmentKey]bool{}, evictJobs: map[types.SegmentKey]bool{}, pins: map[types.SegmentKey]int{}}
		for i, id := range []types.StreamID{1, 2, 1} {
			require.NoError(t, p.appendRec(id), "append %d", i)
		}
		require.ErrorIs(t, p.appendRec(1), errBlocked, "the fourth append is refused at first")
		err := p.progress(3, nil)
		if tc.stuck {
			require.ErrorContains(t, err, "append to stream 1 stays blocked")
		} else {
			require.NoError(t, err)
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// envInt reads a positive count from the environment (0 when unset).
func envInt(t testing.TB, name string) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}
