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

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/logthrottle"
	"github.com/aof2/aof2/pluginapi"
	"github.com/hashicorp/go-hclog"
)

// Which store the node writes to (docs/adr-fencing.md, "Objects"). The
// prefix's descriptor (tier2.Descriptor) names the store; the data
// directory records the id it writes to (StoreFile). At start, and until
// it succeeds, the coordinator reads or creates the descriptor and checks
// it against that record; no tier-2 mutation is made before (the gate in
// the job loop, and in reserve.go for segment-id reservations), and a
// mismatch stops them for good:
//
//   - the prefix holds another store than the one recorded: ErrForeignStore;
//   - the prefix holds none, but the node recorded one: ErrStoreMissing
//     (tier 2 was emptied, or the configuration points elsewhere);
//   - the prefix holds a store of another format or version:
//     tier2.ErrIncompatibleStore.
//
// A data directory that recorded nothing adopts the prefix's store (a new
// node, or one upgraded from before descriptors), creating it if needed.

// manifestFormat is the manifest chunk and snapshot format version
// (docs/formats.md) a store descriptor names.
const manifestFormat = 1

// StoreFile is the data directory's record of its tier-2 store.
const StoreFile = "tier2-store.json"

// ErrForeignStore: the prefix holds another store than the one the data
// directory writes to.
var ErrForeignStore = errors.New("coordinator: tier 2 holds another store than this data directory's")

// ErrStoreMissing: the data directory writes to a store the prefix no
// longer holds a descriptor of.
var ErrStoreMissing = errors.New("coordinator: the tier-2 prefix holds no store descriptor, but this data directory recorded one")

type storeRecord struct {
	StoreID string `json:"store_id"`
}

// checkStore reads or creates the prefix's descriptor and checks it
// against the data directory's record; it opens the gate on success.
// Errors other than the three above mean tier 2 could not be asked: the
// next scan tries again.
func (c *Coordinator) checkStore(ctx context.Context) error {
	if c.remote == nil || c.storeOK.Load() {
		return nil
	}
	id, created, err := CheckStore(ctx, c.cfg.FS, c.cfg.DataDir, c.remote, c.mayUpload())
	if err != nil {
		return err
	}
	if c.cfg.Cluster != nil {
		if id == "" {
			return errNoStoreYet
		}
		if err := c.checkClusterClaim(ctx, id); err != nil {
			return err
		}
	} else if c.cfg.Replica {
		if id == "" {
			return fmt.Errorf("%w: the prefix has no store descriptor yet (no writer has started on it)", ErrStoreMissing)
		}
	} else if err := c.claimWriter(ctx, id); err != nil {
		return err
	} else if err := c.fenceStreams(ctx); err != nil {
		return err
	}
	c.storeOK.Store(true)
	c.log.Info("tier 2 store checked", "store_id", id, "recorded", created)
	return nil
}

// CheckStore checks the prefix's store descriptor against the record in
// dataDir and, when dataDir recorded none, records the prefix's store
// there; recorded says it did. With create, a prefix without a
// descriptor gets one (a writer's first start); without, it is accepted
// only when dataDir recorded none either (a prefix written before
// descriptors existed), and id is "". restore uses it without create.
func CheckStore(ctx context.Context, fsys vfs.FS, dataDir string, remote *tier2.Store, create bool) (id string, recorded bool, err error) {
	path := filepath.Join(dataDir, StoreFile)
	var local storeRecord
	b, err := vfs.ReadFile(fsys, path)
	switch {
	case err == nil:
		if local, err = decodeStoreRecord(b); err != nil {
			return "", false, fmt.Errorf("%w: %s does not decode", ErrForeignStore, path)
		}
	case !vfs.IsNotExist(err):
		return "", false, fmt.Errorf("coordinator: read %s: %w", path, err)
	}
	d, err := remote.ReadDescriptor(ctx)
	switch {
	case errors.Is(err, pluginapi.ErrNotFound) && local.StoreID != "":
		return "", false, fmt.Errorf("%w: store %s (%s); check tier2.prefix and the bucket", ErrStoreMissing, local.StoreID, path)
	case errors.Is(err, pluginapi.ErrNotFound) && !create:
		return "", false, nil
	case errors.Is(err, pluginapi.ErrNotFound):
		d, err = remote.CreateDescriptor(ctx, newDescriptor())
	}
	if err != nil {
		return "", false, err
	}
	if err := d.Check(); err != nil {
		return "", false, err
	}
	if d.SegmentFormat != segment.Version || d.ManifestFormat != manifestFormat {
		return "", false, fmt.Errorf("%w: segment format %d, manifest format %d; this build writes %d and %d",
			tier2.ErrIncompatibleStore, d.SegmentFormat, d.ManifestFormat, segment.Version, manifestFormat)
	}
	if local.StoreID != "" && local.StoreID != d.StoreID {
		return "", false, fmt.Errorf("%w: the prefix holds store %s, %s records store %s", ErrForeignStore, d.StoreID, path, local.StoreID)
	}
	if local.StoreID == "" {
		b, _ := json.Marshal(storeRecord{StoreID: d.StoreID})
		if err := vfs.WriteFileAtomic(fsys, path, append(b, '\n')); err != nil {
			return "", false, fmt.Errorf("coordinator: record the tier-2 store: %w", err)
		}
	}
	return d.StoreID, local.StoreID == "", nil
}

// decodeStoreRecord decodes StoreFile's content: it names a store.
func decodeStoreRecord(b []byte) (storeRecord, error) {
	var r storeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return storeRecord{}, err
	}
	if r.StoreID == "" {
		return storeRecord{}, errors.New("no store id")
	}
	return r, nil
}

const storeUnchecked = "tier 2 store descriptor not checked; tier-2 writes wait"

// retryStoreCheck checks the store at a scan until it succeeds, then
// does what Start could not: the deletes it left, and a reconciliation
// (its re-uploads were held at the gate, and only Start queues them).
// Rate-limited logs while it fails; a mismatch is logged at error and
// keeps the gate shut.
func (c *Coordinator) retryStoreCheck(st *core.Store) {
	if c.remote == nil || c.storeOK.Load() {
		return
	}
	err := c.checkStore(c.ctx)
	if errors.Is(err, errNoStoreYet) || errors.Is(err, errNoClaimYet) {
		return // expected until the cluster's leader creates them
	}
	if err != nil {
		level := hclog.Warn
		if storeRefused(err) {
			level = hclog.Error
		}
		c.logs.Fail(logthrottle.Failure{Level: level, Msg: storeUnchecked, Reason: tier2.Reason(err), Args: []any{"error", err}})
		if errors.Is(err, ErrPrefixClaimed) && c.cfg.Cluster == nil {
			_ = c.fence(c.ctx) // another node writes the prefix: this one stops
		}
		return
	}
	c.logs.Succeed(storeUnchecked, "")
	if !c.ownsCommitLog() {
		return
	}
	for _, id := range st.Streams() {
		if s, err := st.Lookup(id); err == nil {
			c.resumeDeletes(c.ctx, s)
			rec := c.reconcile(c.ctx, s)
			c.mu.Lock()
			c.mu.recon = append(c.mu.recon, rec)
			c.mu.Unlock()
		}
	}
}

// storeRefused says whether err is a definitive store mismatch.
func storeRefused(err error) bool {
	return errors.Is(err, ErrForeignStore) || errors.Is(err, ErrStoreMissing) || errors.Is(err, tier2.ErrIncompatibleStore) ||
		errors.Is(err, ErrPrefixClaimed) || errors.Is(err, ErrHistoryDiverged)
}

func newDescriptor() tier2.Descriptor {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	host, _ := os.Hostname()
	return tier2.Descriptor{Format: tier2.DescriptorFormat, Version: tier2.DescriptorVersion, StoreID: hex.EncodeToString(id),
		Layout: tier2.LayoutVersion, SegmentFormat: segment.Version, ManifestFormat: manifestFormat,
		CreatedAt: time.Now().UTC().Format(time.RFC3339), CreatedBy: host}
}
