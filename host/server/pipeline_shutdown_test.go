package server_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
)

// TestPipelineShutdownAnswersWhatItAppended: Shutdown with pipelines busy:
// every request the host appended is answered, including one appended as
// the call's context ended and one that found the queue full (before, the
// handover raced the context, and the last drain missed what came after
// it: the client was told CLOSED with nothing appended).
func TestPipelineShutdownAnswersWhatItAppended(t *testing.T) {
	unanswered := 0
	for round := range 30 {
		h := start(t, smallConfig(), server.Options{})
		logc, _, _ := dial(t, h.GRPCAddr)
		const calls = 8
		acks := make([]int, calls)
		var wg sync.WaitGroup
		started := make(chan struct{}, calls)
		for i := range calls {
			call, err := logc.AppendPipeline(ctxT(t))
			require.NoError(t, err)
			wg.Add(2)
			go func() { // send until the call ends
				defer wg.Done()
				for seq := uint64(1); ; seq++ {
					if seq == 50 {
						started <- struct{}{}
					}
					err := call.Send(&aof2v1.AppendPipelineRequest{Seq: seq, Append: &aof2v1.AppendRequest{
						StreamId: uint64(i + 1), Records: recs(fmt.Appendf(nil, "c%d-s%d", i, seq)), NoWaitDurable: seq%2 == 0,
					}})
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				for {
					resp, err := call.Recv()
					if err != nil {
						return
					}
					acks[i] += len(resp.GetAcks())
				}
			}()
		}
		for range calls {
			<-started
		}
		h.Shutdown(t)
		wg.Wait()
		for i := range calls {
			str, err := h.Store.Lookup(core.StreamID(i + 1))
			if errors.Is(err, core.ErrUnknownStream) {
				continue
			}
			require.NoError(t, err)
			if n := int(str.Info().Records); n > acks[i] {
				t.Logf("round %d call %d: %d records appended, %d requests answered", round, i, n, acks[i])
				unanswered += n - acks[i]
			}
		}
	}
	require.Zero(t, unanswered, "requests appended and never answered")
}
