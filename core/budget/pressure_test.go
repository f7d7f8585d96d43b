package budget

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

func candKeys(cs []Candidate) []types.SegmentKey {
	var out []types.SegmentKey
	for _, c := range cs {
		out = append(out, c.Key)
	}
	return out
}

// TestRequestSealsIssue12: the issue's sequence in budget terms (2
// segments of budget; streams 1 and 2 active, stream 1 rolls over). The
// refused rollover's own full segment is the one to seal, nothing else;
// once it is safe the rollover is admitted by evicting it. A new stream
// then asks for the least recently activated active segment of another
// stream.
func TestRequestSealsIssue12(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 2 * mib, Policy: PolicyTier2})
	for _, k := range []types.SegmentKey{key(1, 1), key(2, 1)} {
		_, err := b.TryAdmit(Request{Key: k, Bytes: mib, Active: true})
		require.NoError(t, err)
	}
	roll := Request{Key: key(1, 2), Bytes: mib, Active: true}
	_, err := b.TryAdmit(roll)
	requireAdmissionBlock(t, err)
	require.Equal(t, []types.SegmentKey{key(1, 1)}, candKeys(b.RequestSeals(roll)), "only the requester's own full segment")
	require.Equal(t, []types.SegmentKey{key(1, 1)}, candKeys(b.RequestSeals(roll)), "a retry asks for nothing more, repeats the pending request")
	checkInvariants(t, b)
	require.NoError(t, b.Seal(key(1, 1)))
	require.Empty(t, b.RequestSeals(roll), "sealed: no longer a request")
	require.NoError(t, b.MarkInTier2(key(1, 1)))
	g, err := b.TryAdmit(roll)
	require.NoError(t, err)
	require.Equal(t, []types.SegmentKey{key(1, 1)}, evictKeys(g))
	removeAll(t, b, g)

	// A new stream: streams 1 and 2 hold the budget with active segments.
	first := Request{Key: key(3, 1), Bytes: mib, Active: true}
	_, err = b.TryAdmit(first)
	requireAdmissionBlock(t, err)
	require.Equal(t, []types.SegmentKey{key(2, 1)}, candKeys(b.RequestSeals(first)), "the least recently activated one")
	require.Equal(t, []types.SegmentKey{key(2, 1)}, candKeys(b.RequestSeals(first)))
	// The seal cannot be carried out (say stream 2 failed): the next
	// choice is another stream's segment.
	require.NoError(t, b.SealAbandoned(key(2, 1)))
	require.Equal(t, []types.SegmentKey{key(1, 2)}, candKeys(b.RequestSeals(first)))
	checkInvariants(t, b)
}

// TestRequestSealsTouchOrder: a segment read (Touch) is "recently used"
// and is asked to seal after the others.
func TestRequestSealsTouchOrder(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 3 * mib})
	for s := uint64(1); s <= 3; s++ {
		_, err := b.TryAdmit(Request{Key: key(s, 1), Bytes: mib, Active: true})
		require.NoError(t, err)
	}
	require.NoError(t, b.Touch(key(1, 1)))
	require.Equal(t, []types.SegmentKey{key(2, 1), key(3, 1)},
		candKeys(b.RequestSeals(Request{Key: key(4, 1), Bytes: 2 * mib, Active: true})))
}

// TestRequestSealsStreamCap: a stream whose cap its active segment fills
// seals that segment for a hydration of its own, not another stream's.
func TestRequestSealsStreamCap(t *testing.T) {
	b := newBudget(t, Config{StreamMaxBytes: mib})
	for s := uint64(1); s <= 2; s++ {
		_, err := b.TryAdmit(Request{Key: key(s, 1), Bytes: mib, Active: true})
		require.NoError(t, err)
	}
	require.Equal(t, []types.SegmentKey{key(2, 1)}, candKeys(b.RequestSeals(Request{Key: key(2, 7), Bytes: mib})))
	require.Equal(t, []types.SegmentKey{key(2, 1)}, candKeys(b.RequestSeals(Request{Key: key(1, 9), Bytes: 2 * mib})),
		"a request over the cap never fits: ignored (only the pending request is repeated)")
}

// TestRequestSealsQueued: a hydration waiting in the queue behind a
// budget of active segments gets seals asked for at the next call without
// demands (the coordinator's scan).
func TestRequestSealsQueued(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := newBudget(t, Config{MaxBytes: 2 * mib, Policy: PolicyTier1})
	for s := uint64(1); s <= 2; s++ {
		_, err := b.TryAdmit(Request{Key: key(s, 1), Bytes: mib, Active: true})
		require.NoError(t, err)
	}
	ch := admitAsync(ctx, b, Request{Key: key(5, 1), Bytes: mib, Pin: true, InTier1: true, Priority: PriorityForeground})
	waitQueued(t, b, 1)
	require.Equal(t, []types.SegmentKey{key(1, 1)}, candKeys(b.RequestSeals()))
	require.NoError(t, b.Seal(key(1, 1)))
	require.NoError(t, b.MarkInTier1(key(1, 1)))
	r := <-ch
	require.NoError(t, r.err)
	require.Equal(t, []types.SegmentKey{key(1, 1)}, evictKeys(r.grant))
	checkInvariants(t, b)
}

// TestReclaimBytes: disk pressure evicts eligible segments, least recently
// used first, even with an unlimited budget, and never an unsafe one.
func TestReclaimBytes(t *testing.T) {
	b := newBudget(t, Config{Policy: PolicyTier2})
	for s := uint64(1); s <= 3; s++ {
		sealedSafe(t, b, key(s, 1), mib)
	}
	_, err := b.TryAdmit(Request{Key: key(4, 1), Bytes: mib, Active: true})
	require.NoError(t, err)
	require.NoError(t, b.Seal(key(4, 1))) // sealed, not in tier 2
	require.NoError(t, b.Touch(key(1, 1)))
	require.Equal(t, []types.SegmentKey{key(2, 1), key(3, 1)}, candKeys(b.ReclaimBytes(mib+1)))
	require.Equal(t, []types.SegmentKey{key(1, 1)}, candKeys(b.ReclaimBytes(10*mib)), "the unsafe one stays")
	require.Empty(t, b.ReclaimBytes(mib))
	checkInvariants(t, b)
}
