package tier2

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

var errDown = &pluginapi.Error{Code: pluginapi.CodeUnavailable, Message: "down"}

func TestBreakerStateMachine(t *testing.T) {
	clock := newFakeClock()
	var transitions []string
	b := newBreaker(BreakerConfig{Threshold: 3, Cooldown: 10 * time.Second}, clock, func(from, to BreakerState, _ Health) {
		transitions = append(transitions, from.String()+">"+to.String())
	})
	fail := func() {
		probe, err := b.allow()
		require.NoError(t, err)
		b.done(probe, verdictFailure, errDown)
	}

	// Failures below the threshold, a success resets the count.
	fail()
	fail()
	probe, err := b.allow()
	require.NoError(t, err)
	b.done(probe, verdictSuccess, nil)
	assert.Equal(t, 0, b.health().ConsecutiveFailures)
	// Neutral outcomes (throttling, a caller giving up) change nothing.
	for range 5 {
		probe, err := b.allow()
		require.NoError(t, err)
		b.done(probe, verdictNeutral, nil)
	}
	assert.Equal(t, BreakerClosed, b.health().State)

	changed := b.changedCh()
	fail()
	fail()
	fail()
	h := b.health()
	assert.Equal(t, BreakerOpen, h.State)
	assert.Equal(t, clock.Now().Add(10*time.Second), h.RetryAt)
	assert.ErrorIs(t, h.LastError, pluginapi.ErrUnavailable)
	select {
	case <-changed:
	default:
		t.Fatal("HealthChanged not signalled on opening")
	}

	// Open: fail fast until the cool-down ends.
	_, err = b.allow()
	var boe *BreakerOpenError
	require.ErrorAs(t, err, &boe)
	assert.ErrorIs(t, err, ErrBreakerOpen)
	assert.ErrorIs(t, err, pluginapi.ErrUnavailable)
	assert.Equal(t, h.RetryAt, boe.RetryAt)
	clock.Advance(10*time.Second - time.Nanosecond)
	_, err = b.allow()
	assert.ErrorIs(t, err, ErrBreakerOpen)

	// Half-open: exactly one probe; a failed probe re-opens.
	clock.Advance(time.Nanosecond)
	probe, err = b.allow()
	require.NoError(t, err)
	assert.True(t, probe)
	assert.Equal(t, BreakerHalfOpen, b.health().State)
	_, err = b.allow()
	assert.ErrorIs(t, err, ErrBreakerOpen, "a second caller waits for the probe")
	b.done(true, verdictFailure, errDown)
	assert.Equal(t, BreakerOpen, b.health().State)

	// A probe whose caller gave up leaves the breaker half-open.
	clock.Advance(10 * time.Second)
	probe, err = b.allow()
	require.NoError(t, err)
	b.done(probe, verdictNeutral, nil)
	assert.Equal(t, BreakerHalfOpen, b.health().State)

	// A successful probe closes it.
	probe, err = b.allow()
	require.NoError(t, err)
	require.True(t, probe)
	b.done(probe, verdictSuccess, nil)
	assert.Equal(t, BreakerClosed, b.health().State)
	assert.Equal(t, []string{"closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed"}, transitions)
}

// Through the store: a failing backend opens the breaker, calls then fail
// fast without reaching it, and it closes once the backend recovers.
func TestStoreBreaker(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(c *Config) {
		c.Breaker = BreakerConfig{Threshold: 3, Cooldown: time.Minute}
		c.Backoff.Attempts = 2
	})
	ctx := context.Background()
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.ServerError}))
	_, err := e.store.Stat(ctx, "k/1") // two attempts
	assert.ErrorIs(t, err, pluginapi.ErrUnavailable)
	assert.Equal(t, BreakerClosed, e.store.Health().State)
	changed := e.store.HealthChanged()
	_, err = e.store.Stat(ctx, "k/1") // third failure opens it; no retry through an open breaker
	assert.ErrorIs(t, err, ErrBreakerOpen)
	testwait.Recv(t, changed, testwait.Default, "the breaker's health change")
	assert.Equal(t, BreakerOpen, e.store.Health().State)
	assert.Equal(t, 1.0, e.metric("aof_tier2_breaker_state", map[string]string{"state": "open"}))
	assert.Equal(t, 0.0, e.metric("aof_tier2_breaker_state", map[string]string{"state": "closed"}))

	injected := e.fake.Injected()[fake.ServerError]
	_, err = e.store.UploadManifestChunk(ctx, 1, 1, []byte("x"))
	assert.ErrorIs(t, err, ErrBreakerOpen)
	assert.ErrorIs(t, err, pluginapi.ErrUnavailable, "callers treating tier 2 as unavailable need no new case")
	assert.Equal(t, injected, e.fake.Injected()[fake.ServerError], "the backend was not called")
	assert.Equal(t, 1.0, e.requests(ClassInfo, OutcomeBreakerOpen))

	// After the cool-down the probe still fails: open again.
	e.clock.Advance(time.Minute)
	_, err = e.store.Stat(ctx, "k/1")
	assert.ErrorIs(t, err, pluginapi.ErrUnavailable)
	assert.Equal(t, BreakerOpen, e.store.Health().State)

	// The backend recovers: the next probe closes the breaker.
	e.fake.ClearFaults()
	e.clock.Advance(time.Minute)
	_, err = e.store.UploadManifestChunk(ctx, 1, 1, []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, BreakerClosed, e.store.Health().State)
	assert.Equal(t, 1.0, e.metric("aof_tier2_breaker_state", map[string]string{"state": "closed"}))
	assert.Equal(t, 0.0, e.metric("aof_tier2_breaker_state", map[string]string{"state": "open"}))
	assert.Equal(t, 2.0, e.metric("aof_tier2_breaker_transitions_total", map[string]string{"state": "open"}))
	assert.Equal(t, 1.0, e.metric("aof_tier2_breaker_transitions_total", map[string]string{"state": "closed"}))
	st := e.store.Stats()
	assert.Equal(t, BreakerClosed, st.Breaker.State)
	assert.NotZero(t, st.Requests[ClassHead][OutcomeUnavailable])
}

func TestVerdicts(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		ctx  context.Context
		err  error
		want verdict
	}{
		{live, nil, verdictSuccess},
		{live, errDown, verdictFailure},
		{live, &pluginapi.Error{Code: pluginapi.CodePluginCrashed}, verdictFailure},
		{live, context.DeadlineExceeded, verdictFailure},
		{live, errors.New("garbage from the plugin"), verdictFailure},
		{live, pluginapi.ThrottledError(time.Second, "slow down"), verdictNeutral},
		{live, pluginapi.NotFoundError("k"), verdictSuccess},
		{live, &pluginapi.Error{Code: pluginapi.CodeAuth}, verdictSuccess},
		{done, errDown, verdictNeutral},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, verdictOf(tc.ctx, tc.err), "%v", tc.err)
	}
}
