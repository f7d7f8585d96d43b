package budget

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

// model is a deliberately naive reference implementation of the budget:
// a map and linear scans, no heaps, no incremental sums. The property test
// drives it and a Budget with the same operations and requires the same
// answers (errors, victims in order, byte totals).
type model struct {
	max, streamMax int64
	limits         map[types.StreamID]int64
	policy         Policy
	entries        map[types.SegmentKey]*mEntry
	tick           uint64
}

type mEntry struct {
	bytes      int64
	state      state
	pins       int
	inT1, inT2 bool
	tick       uint64
	sealReq    bool
}

func (m *model) next() uint64 { m.tick++; return m.tick }

func (m *model) cap(id types.StreamID) int64 {
	if v, ok := m.limits[id]; ok {
		return v
	}
	return m.streamMax
}

func (m *model) eligible(e *mEntry) bool {
	safe := e.inT1 || e.inT2
	if m.policy == PolicyTier2 {
		safe = e.inT2
	}
	return e.state == stateSealed && e.pins == 0 && safe
}

func (m *model) used(stream *types.StreamID) int64 {
	n := int64(0)
	for k, e := range m.entries {
		if e.state != stateEvicting && (stream == nil || k.Stream == *stream) {
			n += e.bytes
		}
	}
	return n
}

// lru returns the eligible keys, oldest first, of one stream or all.
func (m *model) lru(stream *types.StreamID) []types.SegmentKey {
	var ks []types.SegmentKey
	for k, e := range m.entries {
		if m.eligible(e) && (stream == nil || k.Stream == *stream) {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return m.entries[ks[i]].tick < m.entries[ks[j]].tick })
	return ks
}

func (m *model) evict(k types.SegmentKey) Candidate {
	m.entries[k].state = stateEvicting
	return Candidate{Key: k, Bytes: m.entries[k].bytes}
}

func (m *model) admit(r Request) ([]Candidate, error) {
	if _, ok := m.entries[r.Key]; ok {
		return nil, ErrExists
	}
	id := r.Key.Stream
	limit := m.cap(id)
	if (m.max > 0 && r.Bytes > m.max) || (limit > 0 && r.Bytes > limit) {
		return nil, ErrExceedsBudget
	}
	var sDef, gDef int64
	if limit > 0 {
		sDef = m.used(&id) + r.Bytes - limit
	}
	if m.max > 0 {
		gDef = m.used(nil) + r.Bytes - m.max
	}
	sum := func(ks []types.SegmentKey) int64 {
		n := int64(0)
		for _, k := range ks {
			n += m.entries[k].bytes
		}
		return n
	}
	if sum(m.lru(nil)) < gDef || sum(m.lru(&id)) < sDef {
		return nil, types.ErrWouldBlock
	}
	var out []Candidate
	for _, k := range m.lru(&id) {
		if sDef <= 0 {
			break
		}
		c := m.evict(k)
		sDef -= c.Bytes
		gDef -= c.Bytes
		out = append(out, c)
	}
	for _, k := range m.lru(nil) {
		if gDef <= 0 {
			break
		}
		c := m.evict(k)
		gDef -= c.Bytes
		out = append(out, c)
	}
	e := &mEntry{bytes: r.Bytes, state: stateSealed, inT1: r.InTier1, inT2: r.InTier2, tick: m.next()}
	if r.Active {
		e.state = stateActive
	}
	if r.Pin {
		e.pins = 1
	}
	m.entries[r.Key] = e
	return out, nil
}

// keep is the bytes of active entries not asked to seal, of one stream or
// all.
func (m *model) keep(stream *types.StreamID) int64 {
	n := int64(0)
	for k, e := range m.entries {
		if e.state == stateActive && !e.sealReq && (stream == nil || k.Stream == *stream) {
			n += e.bytes
		}
	}
	return n
}

// oldestActive is the oldest active entry not asked to seal, of one stream
// or all.
func (m *model) oldestActive(stream *types.StreamID) (types.SegmentKey, bool) {
	var best types.SegmentKey
	found := false
	for k, e := range m.entries {
		if e.state == stateActive && !e.sealReq && (stream == nil || k.Stream == *stream) &&
			(!found || e.tick < m.entries[best].tick) {
			best, found = k, true
		}
	}
	return best, found
}

// requestSeals is RequestSeals with one demand (the model never queues).
func (m *model) requestSeals(r Request) []Candidate {
	var want int64
	limit := m.cap(r.Key.Stream)
	if _, ok := m.entries[r.Key]; !ok && !(m.max > 0 && r.Bytes > m.max) && !(limit > 0 && r.Bytes > limit) {
		want = r.Bytes
	}
	if r.Active {
		for k, e := range m.entries {
			if k.Stream == r.Key.Stream && k != r.Key && e.state == stateActive {
				e.sealReq = true
			}
		}
	}
	for m.max > 0 && m.keep(nil)+want > m.max {
		k, ok := m.oldestActive(nil)
		if !ok {
			break
		}
		m.entries[k].sealReq = true
	}
	id := r.Key.Stream
	for want > 0 && limit > 0 && m.keep(&id)+want > limit {
		k, ok := m.oldestActive(&id)
		if !ok {
			break
		}
		m.entries[k].sealReq = true
	}
	var ks []types.SegmentKey
	for k, e := range m.entries {
		if e.state == stateActive && e.sealReq {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return m.entries[ks[i]].tick < m.entries[ks[j]].tick })
	var out []Candidate
	for _, k := range ks {
		out = append(out, Candidate{Key: k, Bytes: m.entries[k].bytes})
	}
	return out
}

func (m *model) reclaim() []Candidate {
	var out []Candidate
	ids := map[types.StreamID]bool{}
	for k := range m.entries {
		ids[k.Stream] = true
	}
	for id := range m.limits {
		ids[id] = true
	}
	sorted := make([]types.StreamID, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	for _, id := range sorted {
		limit := m.cap(id)
		for _, k := range m.lru(&id) {
			if limit <= 0 || m.used(&id) <= limit {
				break
			}
			out = append(out, m.evict(k))
		}
	}
	for _, k := range m.lru(nil) {
		if m.max <= 0 || m.used(nil) <= m.max {
			break
		}
		out = append(out, m.evict(k))
	}
	return out
}

// live returns the entry for an operation that refuses evicting segments.
func (m *model) live(k types.SegmentKey) (*mEntry, error) {
	e, ok := m.entries[k]
	if !ok {
		return nil, ErrUnknownSegment
	}
	if e.state == stateEvicting {
		return nil, ErrEvicting
	}
	return e, nil
}

// classify maps an error to the sentinel the model speaks in.
func classify(err error) error {
	for _, s := range []error{types.ErrWouldBlock, ErrExceedsBudget, ErrExists, ErrUnknownSegment, ErrEvicting,
		ErrActive, ErrPinned, ErrNotPinned, ErrNotEvicting} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// runModel applies the operations encoded in data to a Budget and the
// model and fails on the first difference.
func runModel(t *testing.T, data []byte) {
	if len(data) < 3 {
		return
	}
	cfg := Config{MaxBytes: int64(data[0]%16) * mib, StreamMaxBytes: int64(data[1]%4) * mib, Policy: Policy(data[2] % 2)}
	b := newBudget(t, cfg)
	m := &model{max: cfg.MaxBytes, streamMax: cfg.StreamMaxBytes, policy: cfg.Policy,
		limits: map[types.StreamID]int64{}, entries: map[types.SegmentKey]*mEntry{}}
	data = data[3:]
	for i := 0; len(data) >= 3; i++ {
		op, a, c := data[0]%19, data[1], data[2]
		data = data[3:]
		k := key(uint64(a%3), uint64(a/3%6))
		var got, want error
		var gotC, wantC []Candidate
		desc := fmt.Sprintf("op %d: code %d %s a=%d c=%d", i, op, k, a, c)
		switch op {
		case 0, 1: // admit: active, or hydrated with flags from c
			r := Request{Key: k, Bytes: int64(c%3+1) * mib, Active: op == 0}
			if op == 1 {
				r.InTier1, r.InTier2, r.Pin = c&4 != 0, c&8 != 0, c&16 != 0
			}
			var g Grant
			g, got = b.TryAdmit(r)
			gotC = g.Evict
			wantC, want = m.admit(r)
		case 2, 14, 15: // seal; 14 and 15 also make it safe (the common path)
			got = b.Seal(k)
			if got == nil && op >= 14 {
				got = b.MarkInTier1(k)
			}
			if got == nil && op == 15 {
				got = b.MarkInTier2(k)
			}
			if e, err := m.live(k); err != nil {
				want = err
			} else {
				if e.state == stateActive {
					e.state, e.tick, e.sealReq = stateSealed, m.next(), false
				}
				e.inT1 = e.inT1 || op >= 14
				e.inT2 = e.inT2 || op == 15
			}
		case 3, 4, 13:
			switch op {
			case 3:
				got = b.MarkInTier1(k)
			case 4:
				got = b.MarkInTier2(k)
			default:
				got = b.UnmarkInTier1(k)
			}
			if e, err := m.live(k); err != nil {
				want = err
			} else {
				e.inT1 = (e.inT1 || op == 3) && op != 13
				e.inT2 = e.inT2 || op == 4
			}
		case 5:
			got = b.Pin(k)
			if e, err := m.live(k); err != nil {
				want = err
			} else {
				e.pins++
				e.tick = m.next()
			}
		case 6:
			got = b.Unpin(k)
			if e, err := m.live(k); err != nil {
				want = err
			} else if e.pins == 0 {
				want = ErrNotPinned
			} else {
				e.pins--
			}
		case 7:
			got = b.Touch(k)
			if e, err := m.live(k); err != nil {
				want = err
			} else {
				e.tick = m.next()
			}
		case 8:
			got = b.Removed(k)
			e, ok := m.entries[k]
			switch {
			case !ok:
				want = ErrUnknownSegment
			case e.state == stateActive:
				want = ErrActive
			case e.pins > 0:
				want = ErrPinned
			default:
				delete(m.entries, k)
			}
		case 9:
			got = b.Restore(k)
			e, ok := m.entries[k]
			switch {
			case !ok:
				want = ErrUnknownSegment
			case e.state != stateEvicting:
				want = ErrNotEvicting
			default:
				e.state = stateSealed
			}
		case 10:
			gotC, wantC = b.Reclaim(), m.reclaim()
		case 11:
			n := int64(c%5) * mib
			require.NoError(t, b.SetStreamLimit(k.Stream, n))
			m.limits[k.Stream] = n
		case 12:
			n := int64(c%10) * mib
			require.NoError(t, b.SetMaxBytes(n))
			m.max = n
		case 16: // a refused demand (active or not) asks for seals
			r := Request{Key: k, Bytes: int64(c%3+1) * mib, Active: c&4 != 0}
			gotC, wantC = b.RequestSeals(r), m.requestSeals(r)
		case 17:
			got = b.SealAbandoned(k)
			if e, ok := m.entries[k]; !ok {
				want = ErrUnknownSegment
			} else if e.state == stateActive && e.sealReq {
				e.sealReq, e.tick = false, m.next()
			}
		case 18: // disk pressure: free at least n bytes
			n := int64(c%6) * mib
			gotC = b.ReclaimBytes(n)
			for _, k := range m.lru(nil) {
				if n <= 0 {
					break
				}
				c := m.evict(k)
				n -= c.Bytes
				wantC = append(wantC, c)
			}
		}
		require.Equal(t, want, classify(got), desc)
		require.Equal(t, wantC, gotC, desc)
		require.NoError(t, invariants(b), desc)
		s := b.Stats()
		require.Equal(t, m.used(nil), s.Used, desc)
		require.Equal(t, len(m.entries), s.Segments, desc)
	}
}

func FuzzModel(f *testing.F) {
	f.Add([]byte{4, 0, 0, 0, 1, 0, 2, 1, 0, 3, 1, 0, 0, 2, 1, 0, 5, 1, 10, 0, 0})
	f.Add([]byte{7, 2, 1, 0, 0, 2, 0, 3, 1, 2, 3, 0, 4, 3, 0, 1, 4, 28, 9, 3, 0, 10, 0, 0, 8, 3, 0, 11, 1, 4})
	f.Add([]byte{3, 1, 1, 1, 1, 12, 1, 2, 8, 1, 5, 1, 1, 6, 4, 13, 4, 0, 0, 5, 2, 9, 5, 0, 12, 0, 9})
	f.Fuzz(runModel)
}

// TestModelRandom runs long random operation sequences through the model
// check (deterministic seeds, so a failure reproduces).
func TestModelRandom(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			data := make([]byte, 3+3*400)
			x := seed * 0x9e3779b97f4a7c15
			for i := range data {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				data[i] = byte(x)
			}
			runModel(t, data)
		})
	}
}
