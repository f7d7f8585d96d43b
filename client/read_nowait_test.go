package client_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// TestReadNoWaitHydration: a Read with NoWaitHydration of a segment in a
// colder tier fails at once with the engine's WouldBlock of kind
// Hydration and the host's retry delay, as the engine's non-blocking
// reader does in process; the host hydrates meanwhile and a Read retried
// after the delay returns the records.
func TestReadNoWaitHydration(t *testing.T) {
	cold := servertest.NewCold()
	cfg := rollingConfig()
	cfg.Tiering = cold
	h := servertest.Start(t, cfg, server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	s, err := h.Store.Stream(1)
	require.NoError(t, err)
	for i := range 3 {
		_, err := c.Append(ctx, 1, []byte(fmt.Sprintf("r%d", i)))
		require.NoError(t, err)
	}
	_, err = c.Seal(ctx, 1)
	require.NoError(t, err)
	require.NoError(t, cold.Evict(s, 1))
	cold.Hold()

	_, err = c.Read(ctx, 1, client.AtStart(), 10, client.NoWaitHydration())
	require.ErrorIs(t, err, types.ErrWouldBlock)
	require.ErrorIs(t, err, core.ErrWouldBlock)
	require.Equal(t, types.Hydration, types.KindOf(err))
	var wb *client.WouldBlockError
	require.ErrorAs(t, err, &wb)
	require.Equal(t, 250*time.Millisecond, wb.RetryAfter)
	var ce *client.Error
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "WOULD_BLOCK", ce.Reason)
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Eventually(t, func() bool { return cold.Hydrations() == 1 }, 10*time.Second, time.Millisecond,
		"the host hydrates in the background")

	cold.Release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := c.Read(ctx, 1, client.AtStart(), 10, client.NoWaitHydration())
		if err == nil {
			require.Len(t, res.Records, 3)
			require.Equal(t, "r0", string(res.Records[0].Payload))
			require.True(t, res.End)
			break
		}
		require.ErrorAs(t, err, &wb)
		require.True(t, time.Now().Before(deadline), "still blocked after 10s: %v", err)
		time.Sleep(wb.RetryAfter)
	}
	require.Equal(t, 1, cold.Hydrations())
}
