package node

import (
	"context"
	"fmt"

	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/types"
)

// takeover claims the prefix at the next epoch (Options.Takeover) once
// the store is open and before tiering starts. A data directory without
// streams over a prefix that holds some is refused first, as it would be
// after the claim (checkNotEmptyOverStreams): taking the prefix from its
// writer for a node that cannot serve it would only stop the writer.
// n.mu is held.
func (n *Node) takeover(ctx context.Context) error {
	if len(n.mu.store.Streams()) == 0 {
		remote, err := n.mu.remote.ListStreams(ctx)
		if err != nil {
			return fmt.Errorf("take the tier-2 prefix over: list its streams: %w", err)
		}
		if len(remote) > 0 {
			return fmt.Errorf("%w: the data directory %s holds no stream and tier 2 holds %d: take the prefix over and rebuild the directory with `aof2-host takeover` and `aof2-host restore` (docs/adr-restore.md); the writer was left alone",
				types.ErrNeedsRestore, n.opts.DataDir, len(remote))
		}
	}
	rec, err := coordinator.Takeover(ctx, nil, n.opts.DataDir, n.mu.remote)
	if err != nil {
		return fmt.Errorf("take the tier-2 prefix over: %w", err)
	}
	n.log.Warn("took the tier-2 prefix over: the previous writer is fenced at its next tier-2 write",
		"node_id", rec.NodeID, "epoch", rec.Epoch)
	return nil
}
