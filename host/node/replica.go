package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/aof2/aof2/core/replica"
)

// startFollowing makes the started node a read replica: one poll catches
// up with tier 2 before the node reports ready (a failure there is
// logged, not fatal: tier 2 may be away, and Run retries), then Run
// follows until Close. n.mu is held.
func (n *Node) startFollowing(ctx context.Context, w *replica.Writer) error {
	rc := *n.opts.Replica
	rc.Store, rc.Remote, rc.Writer, rc.Retire = n.mu.store, n.mu.remote, w, n.mu.coord.RetireFollowed
	rc.Registerer = or(rc.Registerer, n.opts.Registerer)
	rc.Logger = orLog(rc.Logger, n.log.Named("replica"))
	f, err := replica.New(rc)
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	if err := f.Poll(ctx); err != nil {
		n.log.Warn("replica: the first catch-up with tier 2 failed; serving what is local and retrying", "error", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.Run(runCtx)
	}()
	n.mu.follower = f
	n.mu.stopFollow = func() {
		cancel()
		wg.Wait()
		f.Close()
	}
	n.log.Info("serving as a read replica of the tier-2 prefix's writer", "writer", w.Refusal().Error())
	n.ready.Store(true)
	return nil
}
