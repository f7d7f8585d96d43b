package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aof2/aof2/pluginapi"
)

// Conditional writes and deletes must be atomic, and no single-threaded
// behaviour can tell an atomic if_absent from a Head-then-Put. These
// behaviours race writers on purpose. They are deterministic in what they
// assert: outcomes are counted (exactly one winner), never timed. To make
// a check-then-act backend lose for certain, every racing Put is held
// after its first chunks (the backend has started the write, and made any
// check it makes up front) until all of them have started; then all are
// released together. Every wait is bounded by the behaviour's context.

func raceBehaviours() []behaviour {
	return []behaviour{
		{"RaceIfAbsent", testRaceIfAbsent},
		{"RaceIfMatch", testRaceIfMatch},
		{"RacePutDelete", testRacePutDelete},
		{"ListDuringWrites", testListDuringWrites},
	}
}

// raceRounds is how many times each conditional race runs, on fresh keys:
// a check-then-act backend escapes one round only if the scheduler ran its
// writers one after the other, and escaping every round is unlikely.
const raceRounds = 3

// raceWidth is how many streams a race may open at once: 8, or fewer when
// the backend advertises a lower Limits.MaxConcurrentStreams.
func (s *suite) raceWidth() int {
	n := 8
	if m := s.tgt.Info.Limits.MaxConcurrentStreams; m != 0 {
		n = min(n, int(m))
	}
	return n
}

// raceOutcome is what one racing Put got.
type raceOutcome struct {
	data []byte
	info pluginapi.ObjectInfo
	err  error
}

// heldPut is a Put whose body is held after its first chunks.
type heldPut struct {
	data []byte
	body *gatedBody
	done chan raceOutcome
}

// startHeldPut starts a Put of data with req's key and preconditions
// whose body stalls after two full chunks until released.
func (s *suite) startHeldPut(ctx context.Context, req pluginapi.PutRequest, data []byte) *heldPut {
	cut := min(len(data), 2*int(s.tgt.ChunkSize)+10)
	p := &heldPut{data: data, body: newGatedBody(ctx, data[:cut], data[cut:]), done: make(chan raceOutcome, 1)}
	req.Size, req.CRC64 = uint64(len(data)), pluginapi.CRC64(data)
	go func() {
		info, err := s.b().Put(ctx, req, p.body)
		p.done <- raceOutcome{data: data, info: info, err: err}
	}()
	return p
}

// racePuts runs n Puts of distinct bodies on one key with req's
// preconditions: all are held until every one has started, then released
// together. It returns every outcome, in writer order.
func (s *suite) racePuts(t T, ctx context.Context, r Rule, req pluginapi.PutRequest, n int, seed uint64) []raceOutcome {
	t.Helper()
	size := 2*int(s.tgt.ChunkSize) + 1000
	puts := make([]*heldPut, n)
	for i := range puts {
		puts[i] = s.startHeldPut(ctx, req, pattern(seed+uint64(i), size))
	}
	outcomes := make([]raceOutcome, n)
	finished := make([]bool, n)
	for i, p := range puts {
		select {
		case <-p.body.reached:
		case o := <-p.done: // refused before its body was read: fine
			outcomes[i], finished[i] = o, true
		case <-ctx.Done():
			fail(t, r, "writer %d of %d: got no progress before the deadline (%v), want its Put to start", i, n, ctx.Err())
		}
	}
	for _, p := range puts {
		close(p.body.release)
	}
	for i, p := range puts {
		if finished[i] {
			continue
		}
		select {
		case outcomes[i] = <-p.done:
		case <-ctx.Done():
			fail(t, r, "writer %d of %d: got no answer before the deadline (%v), want every racing Put to end", i, n, ctx.Err())
		}
	}
	return outcomes
}

// checkOneWinner checks that exactly one outcome succeeded, that every
// other failed with one of loserErrs, and that key now holds the winner's
// bytes and etag.
func (s *suite) checkOneWinner(t T, ctx context.Context, r Rule, key string, outcomes []raceOutcome, loserErrs ...error) {
	t.Helper()
	var winners []int
	for i, o := range outcomes {
		if o.err == nil {
			winners = append(winners, i)
			continue
		}
		ok := false
		for _, e := range loserErrs {
			ok = ok || errors.Is(o.err, e)
		}
		check(t, r, ok, "losing writer %d of %d: got %v (%s), want %v", i, len(outcomes), o.err, pluginapi.CodeOf(o.err), loserErrs)
	}
	if !check(t, r, len(winners) == 1, "got %d of %d racing writers succeeding (writers %v), want exactly 1", len(winners), len(outcomes), winners) || len(winners) == 0 {
		return
	}
	w := outcomes[winners[0]]
	rng, got, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key})
	noErr(t, r, err, "Get %q after the race", key)
	check(t, r, bytes.Equal(got, w.data), "after the race %q holds %d bytes: got bytes differing from the winner's (first difference at %d), want the winning writer's %d bytes", key, len(got), firstDiff(got, w.data), len(w.data))
	check(t, r, rng.Info.ETag == w.info.ETag, "after the race: got etag %q, want the winning writer's %q", rng.Info.ETag, w.info.ETag)
}

// conditionalRaceWidth skips a conditional race the backend cannot run
// (capability not advertised, one stream at a time) and returns how many
// writers race.
func (s *suite) conditionalRaceWidth(t T, advertised bool, capability string) int {
	if !advertised {
		t.Skipf("%s not advertised (Unimplemented checked by UnadvertisedFeatures)", capability)
	}
	n := s.raceWidth()
	if n < 2 {
		t.Skipf("the backend serves %d stream at a time: nothing can race", n)
	}
	return n
}

func testRaceIfAbsent(t T, s *suite) {
	n := s.conditionalRaceWidth(t, s.caps().IfAbsent, "if_absent")
	ctx, cancel := s.ctx(t)
	defer cancel()
	for round := range raceRounds {
		key := s.key(fmt.Sprintf("race/if-absent/%d", round))
		outcomes := s.racePuts(t, ctx, RuleIfAbsentRace, pluginapi.PutRequest{Key: key, IfAbsent: true}, n, 300+uint64(10*round))
		s.checkOneWinner(t, ctx, RuleIfAbsentRace, key, outcomes, pluginapi.ErrAlreadyExists, pluginapi.ErrPrecondition)
	}
}

func testRaceIfMatch(t T, s *suite) {
	n := s.conditionalRaceWidth(t, s.caps().IfMatch, "if_match")
	ctx, cancel := s.ctx(t)
	defer cancel()
	for round := range raceRounds {
		key := s.key(fmt.Sprintf("race/if-match/%d", round))
		base := s.put(t, ctx, s.b(), key, []byte("the version every writer read"))
		outcomes := s.racePuts(t, ctx, RuleIfMatchRace, pluginapi.PutRequest{Key: key, IfMatch: base.ETag}, n, 400+uint64(10*round))
		s.checkOneWinner(t, ctx, RuleIfMatchRace, key, outcomes, pluginapi.ErrPrecondition)
	}
}

func testRacePutDelete(t T, s *suite) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	// Ordered: a Delete that returned while a Put was still in flight
	// comes before that Put's commit, so the Put's bytes are what is left
	// (or, if the backend let the Delete abort the Put, the Put failed and
	// nothing is left). An acknowledged Put that vanished, or the old
	// version surviving, is a lost write.
	key := s.key("race/put-delete/ordered")
	s.put(t, ctx, s.b(), key, []byte("the version being deleted"))
	p := s.startHeldPut(ctx, pluginapi.PutRequest{Key: key}, pattern(500, 2*int(s.tgt.ChunkSize)+1000))
	select {
	case <-p.body.reached:
	case o := <-p.done:
		fail(t, RulePutDeleteRace, "Put ended before its body did: got %v, want it to wait for the rest of the body", o.err)
	case <-ctx.Done():
		fail(t, RulePutDeleteRace, "Put: got no progress before the deadline (%v), want it to start", ctx.Err())
	}
	noErr(t, RulePutDeleteRace, s.b().Delete(ctx, key), "Delete %q while a Put of it is in flight", key)
	close(p.body.release)
	var o raceOutcome
	select {
	case o = <-p.done:
	case <-ctx.Done():
		fail(t, RulePutDeleteRace, "Put: got no answer before the deadline (%v), want it to end", ctx.Err())
	}
	s.checkPutDeleteOutcome(t, ctx, key, o, false)

	// Unordered: Put and Delete started together on several keys, bounded.
	n := max(1, s.raceWidth()/2)
	var wg sync.WaitGroup
	outcomes := make([]raceOutcome, n)
	delErrs := make([]error, n)
	keys := make([]string, n)
	for i := range n {
		keys[i] = s.key(fmt.Sprintf("race/put-delete/%d", i))
		data := pattern(600+uint64(i), int(s.tgt.ChunkSize)+77)
		wg.Add(2)
		go func() {
			defer wg.Done()
			info, err := s.b().Put(ctx, pluginapi.PutRequest{Key: keys[i], Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data))
			outcomes[i] = raceOutcome{data: data, info: info, err: err}
		}()
		go func() {
			defer wg.Done()
			delErrs[i] = s.b().Delete(ctx, keys[i])
		}()
	}
	wg.Wait()
	for i := range n {
		check(t, RulePutDeleteRace, delErrs[i] == nil, "Delete %q racing a Put: got %v, want success", keys[i], delErrs[i])
		s.checkPutDeleteOutcome(t, ctx, keys[i], outcomes[i], true)
	}
}

// checkPutDeleteOutcome checks what a Put that raced a Delete left behind:
// the Put's whole bytes, or nothing. mayVanish says whether the Delete may
// have come after the Put's commit.
func (s *suite) checkPutDeleteOutcome(t T, ctx context.Context, key string, o raceOutcome, mayVanish bool) {
	t.Helper()
	_, got, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key})
	switch {
	case errors.Is(err, pluginapi.ErrNotFound):
		check(t, RulePutDeleteRace, o.err != nil || mayVanish,
			"after a Put acknowledged (etag %q) once the Delete had returned: got NotFound, want the Put's %d bytes", o.info.ETag, len(o.data))
	case err != nil:
		check(t, RulePutDeleteRace, false, "Get %q after a Put raced a Delete: got %v, want the Put's bytes or NotFound", key, err)
	case o.err != nil:
		check(t, RulePutDeleteRace, false, "Put %q failed (%v): got %d bytes under the key, want NotFound after a failed Put and a Delete", key, o.err, len(got))
	default:
		check(t, RulePutDeleteRace, bytes.Equal(got, o.data), "after a Put raced a Delete, %q: got %d bytes (first difference at %d), want the Put's %d bytes or NotFound", key, len(got), firstDiff(got, o.data), len(o.data))
	}
}

func testListDuringWrites(t T, s *suite) {
	if !s.caps().List {
		t.Skipf("list not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	base := s.prefix + "list-during-writes/"
	// Stable keys are never touched again; churn keys interleave with them.
	var stable []string
	for i := range 12 {
		k := s.key(fmt.Sprintf("list-during-writes/k%02d-stable", 2*i))
		s.put(t, ctx, s.b(), k, []byte("stable"))
		stable = append(stable, k)
	}
	churn := func(i int) string { return s.key(fmt.Sprintf("list-during-writes/k%02d-churn", 2*i+1)) }
	const churnSize = 777

	// Held: Puts in flight while List runs. They are invisible, and the
	// stable keys are all there, each once.
	width := s.raceWidth()
	held := make([]*heldPut, max(1, min(2, width-1)))
	for i := range held {
		held[i] = s.startHeldPut(ctx, pluginapi.PutRequest{Key: churn(i)}, pattern(700+uint64(i), 2*int(s.tgt.ChunkSize)+1000))
	}
	for i, p := range held {
		select {
		case <-p.body.reached:
		case o := <-p.done:
			fail(t, RuleListConcurrent, "held Put %d ended before its body did: got %v, want it to wait for the rest of the body", i, o.err)
		case <-ctx.Done():
			fail(t, RuleListConcurrent, "held Put %d: got no progress before the deadline (%v), want it to start", i, ctx.Err())
		}
	}
	got, err := s.listKeys(ctx, base, 3)
	check(t, RuleListConcurrent, err == nil && slices.Equal(got, stable), "List with %d Puts in flight under the prefix (error %v): %s (the objects already written, none in flight)", len(held), err, keysDiff(got, stable))
	for _, p := range held {
		close(p.body.release)
	}
	for i, p := range held {
		select {
		case o := <-p.done:
			noErr(t, RuleListConcurrent, o.err, "held Put %d", i)
		case <-ctx.Done():
			fail(t, RuleListConcurrent, "held Put %d: got no answer before the deadline (%v), want it to end", i, ctx.Err())
		}
		noErr(t, RuleListConcurrent, s.b().Delete(ctx, churn(i)), "Delete %q", churn(i))
	}

	// Churn: writers Put and Delete the churn keys while listers list,
	// a bounded number of rounds each.
	writers := max(1, width/2)
	listers := max(1, width-writers)
	const rounds, listings = 6, 6
	errs := make(chan string, writers*rounds*2+listers*listings*4)
	var wg sync.WaitGroup
	data := pattern(800, churnSize)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k := churn(w*rounds + r)
				if _, err := s.b().Put(ctx, pluginapi.PutRequest{Key: k, Size: churnSize, CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data)); err != nil {
					errs <- fmt.Sprintf("writer %d Put %q: got %v, want success", w, k, err)
					return
				}
				if r%2 == 1 {
					if err := s.b().Delete(ctx, k); err != nil {
						errs <- fmt.Sprintf("writer %d Delete %q: got %v, want success", w, k, err)
						return
					}
				}
			}
		}()
	}
	for l := range listers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range listings {
				if msg := s.checkChurnListing(ctx, base, stable, churnSize, uint32(2+l)); msg != "" {
					errs <- fmt.Sprintf("lister %d: %s", l, msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		check(t, RuleListConcurrent, false, "%s", msg)
	}
}

// listKeys lists a prefix in pages of pageSize.
func (s *suite) listKeys(ctx context.Context, prefix string, pageSize uint32) ([]string, error) {
	var keys []string
	err := s.b().List(ctx, pluginapi.ListRequest{Prefix: prefix, PageSize: pageSize}, func(page []pluginapi.ObjectInfo) error {
		keys = append(keys, keysOf(page)...)
		return nil
	})
	return keys, err
}

// checkChurnListing lists once during the churn and describes what is
// wrong with the listing, or returns "".
func (s *suite) checkChurnListing(ctx context.Context, prefix string, stable []string, churnSize uint64, pageSize uint32) string {
	var all []pluginapi.ObjectInfo
	err := s.b().List(ctx, pluginapi.ListRequest{Prefix: prefix, PageSize: pageSize}, func(page []pluginapi.ObjectInfo) error {
		all = append(all, page...)
		return nil
	})
	if err != nil {
		return fmt.Sprintf("List during writes: got %v, want success", err)
	}
	seen := map[string]bool{}
	for i, o := range all {
		if i > 0 && all[i-1].Key >= o.Key {
			return fmt.Sprintf("List during writes: got %q after %q, want each key once in ascending byte order", o.Key, all[i-1].Key)
		}
		seen[o.Key] = true
		if o.ETag == "" || !slices.Contains(stable, o.Key) && o.Size != churnSize {
			return fmt.Sprintf("List during writes: got %q with size %d etag %q, want a complete object (size %d for a churn key) with an etag", o.Key, o.Size, o.ETag, churnSize)
		}
	}
	for _, k := range stable {
		if !seen[k] {
			return fmt.Sprintf("List during writes (page size %d): got %d keys without %q, want every untouched key listed", pageSize, len(all), k)
		}
	}
	return ""
}
