package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/pluginapi"
)

// One writer per prefix (docs/adr-fencing.md). The prefix's writer record
// (tier2.WriterKey) names the node that may mutate it and the epoch of its
// claim; the data directory records its node id and the epoch it holds
// (WriterFile). At start, once the store descriptor checked out, the
// coordinator claims the prefix (epoch 1 on a prefix without a record) or
// finds its own claim; a record held by another node, or by this node at
// a later epoch, refuses the start (ErrPrefixClaimed). Takeover raises the
// epoch for another node, with a write conditional on the record read.
//
// Before every tier-2 mutation (an upload, a delete, a reservation, a
// scrub replacement) the writer compares the record's etag with its own
// claim's (a Head, mayMutate). Another etag fences it for good: no tier-2
// mutation is made any more, appends and seals are refused with a
// *types.FencedError naming the new writer, aof_writer_fenced is 1 and an
// error event says so; reads go on. The check bounds what a writer does
// after a takeover to the one mutation in flight; what makes that one
// harmless is in the ADR: conditional creates, and the fence records
// (commitlog.go) that close the commit logs to the previous writer.

// WriterFile is the data directory's record of its node id and the epoch
// of the claim it holds.
const WriterFile = "writer.json"

// ErrPrefixClaimed: another node (or this node at a later epoch) is the
// prefix's writer. The error is a *ClaimedError.
var ErrPrefixClaimed = errors.New("coordinator: another node is the writer of this tier-2 prefix")

// ClaimedError is ErrPrefixClaimed with the holder.
type ClaimedError struct {
	Holder tier2.WriterRecord
	// Mine is the epoch this data directory holds (0: none).
	Mine uint64
}

func (e *ClaimedError) Error() string {
	switch e.Holder.NodeID {
	case "":
		return fmt.Sprintf("%v: the prefix has no writer record yet; make this node the writer with `aof2-host takeover` (docs/adr-fencing.md)", ErrPrefixClaimed)
	case ClusterWriter:
		return fmt.Sprintf("%v: the prefix is a cluster's (its leader writes it; writer record of node %q, epoch %d): "+
			"a single node neither writes it nor takes it over; give this node a prefix of its own (tier2.prefix; docs/adr-replication.md)",
			ErrPrefixClaimed, ClusterWriter, e.Holder.Epoch)
	}
	return fmt.Sprintf("%v: node %s (%s) holds it at epoch %d, this data directory at epoch %d; "+
		"make this node the writer with `aof2-host takeover` once that node is stopped (first `aof2-host restore` if this data directory lost its streams; docs/adr-fencing.md)",
		ErrPrefixClaimed, e.Holder.NodeID, e.Holder.Host, e.Holder.Epoch, e.Mine)
}

// Unwrap makes errors.Is(err, ErrPrefixClaimed) true.
func (e *ClaimedError) Unwrap() error { return ErrPrefixClaimed }

// writerFile is WriterFile's content.
type writerFile struct {
	NodeID string `json:"node_id"`
	Epoch  uint64 `json:"epoch"`
	// Fenced is the epoch whose fence records every local stream's
	// tier-2 commit log holds (fenceStreams).
	Fenced uint64 `json:"fenced,omitempty"`
	// Partial lists the streams fenced at Epoch while others (that did
	// not open) are not yet; ignored for any other epoch.
	Partial *partialFence `json:"partial_fence,omitempty"`
}

type partialFence struct {
	Epoch   uint64           `json:"epoch"`
	Streams []types.StreamID `json:"streams"`
}

// loadWriterFile reads the data directory's node id and epoch; the first
// time it makes the node id and records it (epoch 0) before any claim is
// made with it, so that a crash between a claim and its record leaves a
// claim this node recognises as its own.
func loadWriterFile(fsys vfs.FS, dataDir string) (writerFile, error) {
	var w writerFile
	b, err := vfs.ReadFile(fsys, filepath.Join(dataDir, WriterFile))
	switch {
	case vfs.IsNotExist(err):
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		w = writerFile{NodeID: hex.EncodeToString(id)}
		if err := vfs.MkdirAllSync(fsys, dataDir); err != nil {
			return w, err
		}
		return w, saveWriterFile(fsys, dataDir, w)
	case err != nil:
		return w, err
	}
	if w, err = decodeWriterFile(b); err != nil {
		return w, fmt.Errorf("coordinator: %s does not decode (%v)", filepath.Join(dataDir, WriterFile), err)
	}
	return w, nil
}

// decodeWriterFile decodes WriterFile's content: it names the node.
func decodeWriterFile(b []byte) (writerFile, error) {
	var w writerFile
	if err := json.Unmarshal(b, &w); err != nil {
		return writerFile{}, err
	}
	if w.NodeID == "" {
		return writerFile{}, errors.New("no node id")
	}
	return w, nil
}

func saveWriterFile(fsys vfs.FS, dataDir string, w writerFile) error {
	b, _ := json.Marshal(w)
	return vfs.WriteFileAtomic(fsys, filepath.Join(dataDir, WriterFile), append(b, '\n'))
}

func writerRecord(storeID, node string, epoch uint64) tier2.WriterRecord {
	host, _ := os.Hostname()
	return tier2.WriterRecord{StoreID: storeID, Epoch: epoch, NodeID: node, Host: host, ClaimedAt: time.Now().UTC().Format(time.RFC3339)}
}

// claimWriter finds this node's claim of the prefix, or makes the first
// one, and remembers its etag.
func (c *Coordinator) claimWriter(ctx context.Context, storeID string) error {
	local, err := loadWriterFile(c.cfg.FS, c.cfg.DataDir)
	if err != nil {
		return err
	}
	for range 2 {
		rec, etag, err := c.remote.ReadWriter(ctx)
		switch {
		case errors.Is(err, pluginapi.ErrNotFound) && local.Epoch == 0:
			etag, err = c.remote.ClaimWriter(ctx, writerRecord(storeID, local.NodeID, 1), "")
			if errors.Is(err, tier2.ErrClaimRace) {
				continue // another node claimed first: read its claim
			}
			if err != nil {
				return err
			}
			local.Epoch = 1
			if err := saveWriterFile(c.cfg.FS, c.cfg.DataDir, local); err != nil {
				return fmt.Errorf("coordinator: record the claim: %w", err)
			}
			c.log.Info("claimed the tier-2 prefix as its writer", "epoch", 1, "node_id", local.NodeID)
		case errors.Is(err, pluginapi.ErrNotFound):
			return fmt.Errorf("%w: this data directory holds epoch %d of a writer record the prefix no longer has", ErrStoreMissing, local.Epoch)
		case err != nil:
			return err
		case rec.NodeID != local.NodeID || rec.Epoch < local.Epoch:
			return &ClaimedError{Holder: rec, Mine: local.Epoch}
		case storeID != "" && rec.StoreID != storeID:
			return fmt.Errorf("%w: the writer record names store %s", ErrForeignStore, rec.StoreID)
		case rec.Epoch > local.Epoch:
			// This node's own claim, made before a crash kept it from
			// being recorded here.
			local.Epoch = rec.Epoch
			if err := saveWriterFile(c.cfg.FS, c.cfg.DataDir, local); err != nil {
				return fmt.Errorf("coordinator: record the claim: %w", err)
			}
		}
		mine := writerRecord(storeID, local.NodeID, local.Epoch)
		c.claimed.Store(&mine)
		c.claim.Store(&etag)
		c.epoch.Store(local.Epoch)
		return nil
	}
	return fmt.Errorf("coordinator: the writer record kept changing while it was claimed: %w", tier2.ErrClaimRace)
}

// errNotWriter is why a tier-2 mutation is not made: the store or the
// claim is not checked yet, or the node is fenced.
var errNotWriter = errors.New("coordinator: not (yet) the prefix's writer")

// errNotLeading: a cluster member uploads only while it leads.
var errNotLeading = fmt.Errorf("%w: a cluster member that does not lead", errNotWriter)

// errReplica: a read replica (Config.Replica) is never the writer.
var errReplica = fmt.Errorf("%w: a read replica", errNotWriter)

// mayMutate says whether this node may make a tier-2 mutation now: the
// store descriptor and the claim checked out, and the writer record is
// still this node's claim (a Head). A changed record fences the node.
func (c *Coordinator) mayMutate(ctx context.Context) error {
	if c.cfg.Replica {
		return errReplica
	}
	if c.cfg.Cluster != nil {
		if !c.storeOK.Load() || !c.cfg.Cluster.Leading() {
			return errNotLeading
		}
		return nil
	}
	if f := c.fenced.Load(); f != nil {
		return f
	}
	if !c.storeOK.Load() {
		return errNotWriter
	}
	return c.claimHeld(ctx)
}

// claimHeld checks (a Head) that the writer record is still this node's
// claim; a changed record fences the node.
func (c *Coordinator) claimHeld(ctx context.Context) error {
	if f := c.fenced.Load(); f != nil {
		return f
	}
	claim := c.claim.Load()
	if claim == nil {
		return errNotWriter
	}
	etag, err := c.remote.WriterETag(ctx)
	if errors.Is(err, pluginapi.ErrNotFound) {
		return c.reclaim(ctx)
	}
	if err != nil {
		return fmt.Errorf("coordinator: check the writer record: %w", err)
	}
	if etag != *claim {
		return c.fence(ctx)
	}
	return nil
}

// reclaim puts this node's claim back when the writer record is missing:
// no other node claimed the prefix (a claim replaces the record, it never
// removes it), so the record was lost — a write the backend acknowledged
// and did not keep, or a deletion. It is created again only if still
// absent: a node that claims meanwhile wins, and this one is fenced.
func (c *Coordinator) reclaim(ctx context.Context) error {
	mine := c.claimed.Load()
	if mine == nil {
		return errNotWriter
	}
	etag, err := c.remote.ClaimWriter(ctx, *mine, "")
	switch {
	case errors.Is(err, tier2.ErrClaimRace):
		return c.fence(ctx)
	case err != nil:
		return fmt.Errorf("coordinator: put the missing writer record back: %w", err)
	}
	c.log.Warn("the writer record was missing from tier 2 (lost or deleted); this node's claim was put back", "epoch", mine.Epoch)
	c.claim.Store(&etag)
	return nil
}

// fence stops this node's writing for good: another node claimed the
// prefix. Every stream refuses appends with a *types.FencedError.
func (c *Coordinator) fence(ctx context.Context) error {
	fe := &types.FencedError{Holder: "another node"}
	if rec, _, err := c.remote.ReadWriter(ctx); err == nil {
		fe = &types.FencedError{Holder: fmt.Sprintf("node %s (%s)", rec.NodeID, rec.Host), Epoch: rec.Epoch}
	}
	if !c.fenced.CompareAndSwap(nil, fe) {
		return c.fenced.Load()
	}
	c.m.fenced.Set(1)
	c.log.Error("writer fenced: another node claimed the tier-2 prefix; this node makes no tier-2 mutation any more and refuses appends (reads go on)",
		"holder", fe.Holder, "epoch", fe.Epoch)
	c.mu.Lock()
	st := c.mu.store
	c.mu.Unlock()
	if st != nil {
		for _, id := range st.Streams() {
			if s, err := st.Lookup(id); err == nil {
				s.RefuseAppendsWith(fe)
			}
		}
	}
	return fe
}

// Fenced returns the *types.FencedError of a fenced node, or nil.
func (c *Coordinator) Fenced() error {
	if f := c.fenced.Load(); f != nil {
		return f
	}
	return nil
}

// Takeover makes the node of dataDir the writer of remote's prefix: the
// writer record's epoch plus one with this node's id, written on
// condition that the record is still the one read, then recorded in
// dataDir. The previous writer is fenced at its next tier-2 mutation.
// Run it with this node's host stopped (fsys nil: the OS file system).
func Takeover(ctx context.Context, fsys vfs.FS, dataDir string, remote *tier2.Store) (tier2.WriterRecord, error) {
	if fsys == nil {
		fsys = vfs.OS
	}
	local, err := loadWriterFile(fsys, dataDir)
	if err != nil {
		return tier2.WriterRecord{}, err
	}
	storeID, _, err := CheckStore(ctx, fsys, dataDir, remote, true)
	if err != nil {
		return tier2.WriterRecord{}, err
	}
	rec, etag, err := remote.ReadWriter(ctx)
	if err != nil && !errors.Is(err, pluginapi.ErrNotFound) {
		return tier2.WriterRecord{}, err
	}
	if err == nil && rec.NodeID == ClusterWriter {
		// A claim would not stop the cluster's leader: two systems would
		// write the prefix.
		return rec, fmt.Errorf("takeover: %w", &ClaimedError{Holder: rec, Mine: local.Epoch})
	}
	next := writerRecord(storeID, local.NodeID, rec.Epoch+1)
	if _, err := remote.ClaimWriter(ctx, next, etag); err != nil {
		return tier2.WriterRecord{}, fmt.Errorf("takeover: %w", err)
	}
	local.Epoch = next.Epoch
	if err := saveWriterFile(fsys, dataDir, local); err != nil {
		return next, fmt.Errorf("takeover: the claim of epoch %d is made but not recorded in %s (rerun takeover): %w", next.Epoch, dataDir, err)
	}
	return next, nil
}

// HoldsPrefix reports (nil) whether the node of dataDir holds the writer
// record of remote's prefix, as restore requires, and returns the
// record: a *ClaimedError names the holder otherwise (take the prefix
// over first).
func HoldsPrefix(ctx context.Context, fsys vfs.FS, dataDir string, remote *tier2.Store) (tier2.WriterRecord, error) {
	if fsys == nil {
		fsys = vfs.OS
	}
	local, err := loadWriterFile(fsys, dataDir)
	if err != nil {
		return tier2.WriterRecord{}, err
	}
	rec, _, err := remote.ReadWriter(ctx)
	switch {
	case errors.Is(err, pluginapi.ErrNotFound):
		return rec, &ClaimedError{Mine: local.Epoch}
	case err != nil:
		return rec, err
	case rec.NodeID != local.NodeID || rec.Epoch < local.Epoch:
		return rec, &ClaimedError{Holder: rec, Mine: local.Epoch}
	}
	return rec, nil
}
