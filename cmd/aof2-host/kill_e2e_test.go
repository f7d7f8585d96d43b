package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/internal/testseed"
)

// TestServeSIGKILLCycles SIGKILLs the host under load again and again
// (AOF2_HOST_KILLS, default 50) and restarts it on the same data
// directory: every append the host acknowledged as durable must be read
// back after the restart, exactly once and in each writer's order, while
// segments keep moving through the tiers.
func TestServeSIGKILLCycles(t *testing.T) {
	bin := hostBinaries(t)
	t.Run("segments", func(t *testing.T) { serveKillCycles(t, bin, 50) })
	// Appends durable through the node WAL: every restart replays it
	// before the coordinator starts.
	t.Run("node-wal", func(t *testing.T) { serveKillCycles(t, bin, 20, "-segment-node-wal") })
}

func serveKillCycles(t *testing.T, bin string, cycles int, extra ...string) {
	if v, err := strconv.Atoi(os.Getenv("AOF2_HOST_KILLS")); err == nil && v > 0 {
		cycles = v
	}
	seed := testseed.From(t, "AOF2_HOST_KILL_SEED")
	t.Logf("seed %d (cycles %d)", seed, cycles)
	rng := rand.New(rand.NewPCG(seed, 0))
	dataDir := filepath.Join(t.TempDir(), "data")
	const writers, stream = 6, 3
	acked := map[string]bool{} // payloads acknowledged durable, across cycles
	var order [writers][]string

	for cycle := range cycles {
		h := startHost(t, bin, nil, append(defaultHostArgs(dataDir), extra...)...)
		h.waitReady()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c := h.dial(ctx)
		if cycle > 0 {
			verifyAcked(t, ctx, c, stream, acked, order[:], cycle)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					n := 1 + i%4
					batch := make([][]byte, n)
					names := make([]string, n)
					for j := range batch {
						names[j] = fmt.Sprintf("c%03d-w%d-%06d-%d", cycle, w, i, j)
						batch[j] = append([]byte(names[j]), make([]byte, 200+j*50)...)
					}
					if _, err := c.Append(ctx, stream, batch...); err != nil {
						return // the host was killed under this call: not acknowledged
					}
					mu.Lock()
					for _, name := range names {
						acked[name] = true
					}
					order[w] = append(order[w], names...)
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		h.kill() // SIGKILL at an arbitrary moment
		close(stop)
		wg.Wait()
		cancel()
	}
	h := startHost(t, bin, nil, append(defaultHostArgs(dataDir), extra...)...)
	h.waitReady()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	verifyAcked(t, ctx, h.dial(ctx), stream, acked, order[:], cycles)
	h.stop()
	t.Logf("%d cycles, %d acknowledged records, all read back", cycles, len(acked))
}

// verifyAcked reads the whole stream and checks that every acknowledged
// payload is present once, and that each writer's acknowledged records
// appear in the order it appended them.
func verifyAcked(t *testing.T, ctx context.Context, c *client.Client, stream client.StreamID, acked map[string]bool, order [][]string, cycle int) {
	t.Helper()
	seen := map[string]int{}
	pos := map[string]int{}
	at := 0
	for p := client.AtStart(); ; {
		res, err := c.Read(ctx, stream, p, 2000)
		require.NoError(t, err, "cycle %d", cycle)
		for _, r := range res.Records {
			name, _, _ := bytes.Cut(r.Payload, []byte{0})
			seen[string(name)]++
			pos[string(name)] = at
			at++
		}
		if res.End {
			break
		}
		p = res.Next
	}
	for name := range acked {
		require.Equal(t, 1, seen[name], "cycle %d: acknowledged record %s read %d times", cycle, name, seen[name])
	}
	for w, names := range order {
		for i := 1; i < len(names); i++ {
			require.Less(t, pos[names[i-1]], pos[names[i]], "cycle %d: writer %d's records out of order", cycle, w)
		}
	}
}
