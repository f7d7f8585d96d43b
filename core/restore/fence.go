package restore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// fenceAttempts bounds how often a stream's history is read again because
// its next index was taken meanwhile. The previous writer checks the
// writer record before each tier-2 mutation, so it adds at most the one
// chunk it had in flight; more means it does not check (an old host
// version, or a writer that was never fenced).
const fenceAttempts = 4

// ErrLogMoving: a stream's tier-2 commit log kept growing while restore
// tried to fence it.
var ErrLogMoving = errors.New("restore: the stream's tier-2 commit log keeps growing: another writer is still extending it")

// fencedHistory installs the stream's history and closes it to the
// previous writer (docs/adr-fencing.md): a fence record of this node's
// epoch is created at the log's next index before anything else is done
// with it. A chunk the previous writer created at that index meanwhile is
// part of the history: the history is read again, and fenced after it.
// The history ends at the fence, whoever writes later.
func (r *run) fencedHistory(ctx context.Context, stage string, s types.StreamID) (*manifest.Log, tier2.Listing, history, error) {
	for attempt := 1; ; attempt++ {
		listing, err := r.cfg.Remote.ListStream(ctx, s)
		if err != nil {
			return nil, listing, history{}, fmt.Errorf("stream %d: list: %w", s, err)
		}
		log, h, err := r.openHistory(ctx, stage, s, listing)
		if err != nil {
			return nil, listing, h, err
		}
		err = r.writeFence(ctx, s, log)
		if err == nil {
			return log, listing, h, nil
		}
		_ = log.Close()
		if !errors.Is(err, tier2.ErrDataLoss) {
			return nil, listing, h, fmt.Errorf("stream %d: fence: %w", s, err)
		}
		if attempt == fenceAttempts {
			return nil, listing, h, fmt.Errorf("%w: stream %d: %d attempts: %w", ErrLogMoving, s, attempt, err)
		}
		r.log.Warn("the stream's next commit-log index was taken meanwhile (the previous writer's last chunk): reading its history again",
			"stream_id", uint64(s), "error", err)
		for _, dir := range manifest.Dirs(stage, r.cfg.Manifest) {
			if err := vfs.RemoveAll(r.cfg.FS, dir); err != nil {
				return nil, listing, h, err
			}
		}
	}
}

// writeFence appends the fence to the restored log, seals its chunk and
// creates it in tier 2; a log that ends with this epoch's fence (an
// earlier run's) is fenced already. A taken index is the *DataLossError
// of the create. A later epoch's fence in the history, or a writer record
// this node no longer holds, is ErrPrefixClaimed: another takeover
// happened since this restore began, and its node writes the log now.
func (r *run) writeFence(ctx context.Context, s types.StreamID, log *manifest.Log) error {
	if f, ok, err := log.NewestFence(1); err != nil {
		return err
	} else if ok && f.Epoch == r.fence.Epoch {
		return nil
	} else if ok && f.Epoch > r.fence.Epoch {
		return fmt.Errorf("%w: the stream's log holds the fence of epoch %d (node %s), this node holds epoch %d",
			coordinator.ErrPrefixClaimed, f.Epoch, f.NodeID, r.fence.Epoch)
	}
	if err := log.AppendCommit(ctx, r.fence.Record()); err != nil {
		return err
	}
	if err := log.Rotate(ctx); err != nil {
		return err
	}
	chunks := log.SealedChunks()
	if len(chunks) == 0 {
		return fmt.Errorf("the fence's chunk is not sealed")
	}
	ch := chunks[len(chunks)-1]
	data, err := vfs.ReadFile(r.cfg.FS, ch.Path)
	if err != nil {
		return err
	}
	// Another takeover since this run began: its node owns the log now.
	if _, err := coordinator.HoldsPrefix(ctx, r.cfg.FS, r.cfg.DataDir, r.cfg.Remote); err != nil {
		return err
	}
	if _, err := r.cfg.Remote.CreateManifestChunk(ctx, s, ch.Index, data); err != nil {
		return err
	}
	r.log.Info("stream fenced", "stream_id", uint64(s), "chunk", ch.Index, "epoch", r.fence.Epoch)
	return log.MarkUploaded(ctx, ch.Index)
}
