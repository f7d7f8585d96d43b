package tier1

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/logthrottle"
)

// entry is one admitted artifact.
type entry struct {
	key      types.SegmentKey
	info     CompressResult // Duration unset for artifacts found at Open
	pins     int
	uploaded bool
	admitted time.Time
	lastUse  time.Time
	elem     *list.Element // in Cache.mu.lru; front is most recently used
}

// EntryInfo is a snapshot of one cached artifact.
type EntryInfo struct {
	Key        types.SegmentKey
	Path       string
	Bytes      int64 // artifact size
	Capacity   int64 // original segment size
	SegmentCRC uint64
	Pins       int
	Uploaded   bool
	AdmittedAt time.Time
	LastUsed   time.Time
}

// Evicted reports one artifact whose file was deleted, for the caller to
// journal (LocalEvicted with reclaimed_bytes).
type Evicted struct {
	Key      types.SegmentKey
	Path     string
	Bytes    int64
	Uploaded bool
}

// Stats is a snapshot of the cache for observability.
type Stats struct {
	Bytes         int64
	MaxBytes      int64
	Artifacts     int
	Pinned        int
	NotUploaded   int
	CompressQueue int
	HydrateQueue  int
}

// Cache is the warm tier: seekable-zstd artifacts of sealed segments under
// each stream's warm directory, a byte budget with LRU eviction, pins, a
// minimum residency, and the rule that with a tier 2 configured only
// uploaded artifacts are evicted. Compression and hydration run on two
// bounded worker pools. All methods are safe for concurrent use.
type Cache struct {
	cfg      Config
	fs       vfs.FS
	log      hclog.Logger
	m        *metrics
	compress *pool
	hydrate  *pool
	// logs rate-limits tier1_compression_failed, retried every scan while
	// it keeps failing (docs/adr-host.md, "Logs while something stays
	// broken"). Set by Open, never replaced; safe for concurrent use.
	logs *logthrottle.Throttle

	mu struct {
		sync.Mutex
		entries   map[types.SegmentKey]*entry
		lru       *list.List
		bytes     int64
		compress  map[types.SegmentKey]struct{} // compressions in flight
		hydrating map[string]struct{}           // hydration destinations in flight
		removing  map[types.SegmentKey]struct{} // dropped entries whose file is being deleted
		closed    bool
	}
}

// Path returns the artifact path of k (whether or not it is cached).
func (c *Cache) Path(k types.SegmentKey) string { return ArtifactPath(c.cfg.DataDir, k) }

// admitLocked inserts (or replaces) an entry and updates the gauges.
func (c *Cache) admitLocked(e *entry) {
	if old, ok := c.mu.entries[e.key]; ok {
		c.mu.bytes -= old.info.CompressedBytes
		c.mu.lru.Remove(old.elem)
	}
	e.elem = c.mu.lru.PushFront(e)
	c.mu.entries[e.key] = e
	c.mu.bytes += e.info.CompressedBytes
	c.gaugesLocked()
}

func (c *Cache) dropLocked(e *entry) {
	c.mu.lru.Remove(e.elem)
	delete(c.mu.entries, e.key)
	c.mu.bytes -= e.info.CompressedBytes
	c.gaugesLocked()
}

func (c *Cache) gaugesLocked() {
	c.m.cacheBytes.Set(float64(c.mu.bytes))
	c.m.artifacts.Set(float64(len(c.mu.entries)))
}

func (c *Cache) isRemovingLocked(k types.SegmentKey) bool {
	_, ok := c.mu.removing[k]
	return ok
}

func (c *Cache) touchLocked(e *entry) {
	e.lastUse = c.cfg.Now()
	c.mu.lru.MoveToFront(e.elem)
}

func (c *Cache) lookupLocked(k types.SegmentKey) (*entry, error) {
	if c.mu.closed {
		return nil, ErrClosed
	}
	e, ok := c.mu.entries[k]
	if !ok {
		return nil, fmt.Errorf("tier1: %s: %w", k, ErrNotCached)
	}
	return e, nil
}

// Contains reports whether k is cached.
func (c *Cache) Contains(k types.SegmentKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.mu.entries[k]
	return ok
}

// Stat returns a snapshot of k's entry.
func (c *Cache) Stat(k types.SegmentKey) (EntryInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.entries[k]
	if !ok {
		return EntryInfo{}, false
	}
	return c.infoLocked(e), true
}

func (c *Cache) infoLocked(e *entry) EntryInfo {
	return EntryInfo{Key: e.key, Path: e.info.Path, Bytes: e.info.CompressedBytes, Capacity: e.info.Capacity,
		SegmentCRC: e.info.SegmentCRC, Pins: e.pins, Uploaded: e.uploaded, AdmittedAt: e.admitted, LastUsed: e.lastUse}
}

// Entries returns every cached artifact, most recently used first.
func (c *Cache) Entries() []EntryInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]EntryInfo, 0, len(c.mu.entries))
	for el := c.mu.lru.Front(); el != nil; el = el.Next() {
		out = append(out, c.infoLocked(el.Value.(*entry)))
	}
	return out
}

// Stats returns a snapshot of the cache.
// FlushLogs writes the log summaries that are due (repeated failures
// counted but not logged one by one); the coordinator calls it every scan,
// so a summary does not wait for the next failure.
func (c *Cache) FlushLogs() { c.logs.Flush() }

func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Bytes: c.mu.bytes, MaxBytes: c.cfg.MaxBytes, Artifacts: len(c.mu.entries),
		CompressQueue: len(c.compress.queue), HydrateQueue: len(c.hydrate.queue)}
	for _, e := range c.mu.entries {
		if e.pins > 0 {
			s.Pinned++
		}
		if !e.uploaded {
			s.NotUploaded++
		}
	}
	return s
}

// Touch marks k as used now (LRU order).
func (c *Cache) Touch(k types.SegmentKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, err := c.lookupLocked(k)
	if err != nil {
		return err
	}
	c.touchLocked(e)
	return nil
}

// Pin keeps k from eviction until a matching Unpin. Pins nest.
func (c *Cache) Pin(k types.SegmentKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, err := c.lookupLocked(k)
	if err != nil {
		return err
	}
	e.pins++
	c.touchLocked(e)
	return nil
}

// Unpin releases one Pin.
func (c *Cache) Unpin(k types.SegmentKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.entries[k]
	if !ok {
		return fmt.Errorf("tier1: unpin %s: %w", k, ErrNotCached)
	}
	if e.pins == 0 {
		return fmt.Errorf("tier1: unpin %s: not pinned", k)
	}
	e.pins--
	return nil
}

// MarkUploaded records that k's artifact is safe in tier 2 (its upload was
// verified and journaled), which makes it evictable when Config.Tier2 is
// set.
func (c *Cache) MarkUploaded(k types.SegmentKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, err := c.lookupLocked(k)
	if err != nil {
		return err
	}
	e.uploaded = true
	return nil
}

// SetMaxBytes changes the byte budget (0 = unlimited); call Evict to
// apply a lower one.
func (c *Cache) SetMaxBytes(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n >= 0 {
		c.cfg.MaxBytes = n
	}
}

// OverBudget returns how many bytes the cache holds beyond MaxBytes (0 when
// within budget or unlimited).
func (c *Cache) OverBudget() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.MaxBytes == 0 || c.mu.bytes <= c.cfg.MaxBytes {
		return 0
	}
	return c.mu.bytes - c.cfg.MaxBytes
}

// evictableLocked says whether e may be evicted now.
func (c *Cache) evictableLocked(e *entry, now time.Time) bool {
	switch {
	case e.pins > 0:
		return false
	case c.cfg.Tier2 && !e.uploaded:
		return false
	case c.cfg.MinResidency > 0 && now.Sub(e.admitted) < c.cfg.MinResidency:
		return false
	}
	return true
}

// Evict deletes least recently used artifacts until the cache is within
// MaxBytes, skipping pinned (or open) artifacts, artifacts younger than
// MinResidency and, with a tier 2 configured, artifacts not yet marked
// uploaded. It only deletes files (then syncs their directories) and
// returns what it deleted so the caller can journal it; when nothing more
// may be evicted the cache stays over budget (see OverBudget). A failed
// delete keeps the artifact cached and is returned with what did succeed.
func (c *Cache) Evict() ([]Evicted, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	var victims []*entry
	for el := c.mu.lru.Back(); el != nil && c.cfg.MaxBytes > 0 && c.mu.bytes > c.cfg.MaxBytes; {
		e := el.Value.(*entry)
		el = el.Prev()
		if c.evictableLocked(e, now) {
			c.dropLocked(e)
			c.mu.removing[e.key] = struct{}{}
			victims = append(victims, e)
		}
	}
	c.mu.Unlock()
	return c.removeFiles(victims, "budget")
}

// EvictionCandidates lists, least recently used first, the artifacts Evict
// would delete to bring the cache within MaxBytes, without deleting any,
// passing over those skip (when not nil) refuses. A caller that must record
// each eviction in order with other state (the coordinator: only artifacts
// of segments absent from tier 0, each under the segment's lock) removes
// each with Remove. skip runs under the cache's lock: it must not call the
// cache.
func (c *Cache) EvictionCandidates(skip func(types.SegmentKey) bool) []types.SegmentKey {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed || c.cfg.MaxBytes == 0 {
		return nil
	}
	var out []types.SegmentKey
	over := c.mu.bytes - c.cfg.MaxBytes
	for el := c.mu.lru.Back(); el != nil && over > 0; el = el.Prev() {
		e := el.Value.(*entry)
		if c.evictableLocked(e, now) && (skip == nil || !skip(e.key)) {
			out = append(out, e.key)
			over -= e.info.CompressedBytes
		}
	}
	return out
}

// Reclaimable is an artifact ReclaimCandidates offers, and its size.
type Reclaimable struct {
	Key   types.SegmentKey
	Bytes int64
}

// ReclaimCandidates lists least recently used artifacts that may be
// evicted (as Evict would: not pinned, uploaded when a tier 2 is
// configured, past MinResidency) and that skip does not reject, until
// they add up to bytes — whatever MaxBytes says: for a disk that is
// filling up. It deletes nothing.
func (c *Cache) ReclaimCandidates(bytes int64, skip func(types.SegmentKey) bool) []Reclaimable {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil
	}
	var out []Reclaimable
	for el := c.mu.lru.Back(); el != nil && bytes > 0; el = el.Prev() {
		e := el.Value.(*entry)
		if c.evictableLocked(e, now) && (skip == nil || !skip(e.key)) {
			out = append(out, Reclaimable{Key: e.key, Bytes: e.info.CompressedBytes})
			bytes -= e.info.CompressedBytes
		}
	}
	return out
}

// Remove deletes k's artifact now, whatever the budget, residency or upload
// state (for retention, or to discard an artifact the caller distrusts).
// It refuses a pinned artifact with ErrPinned. A file Open reported as
// mismatched or unknown (so not cached) is removed too.
func (c *Cache) Remove(k types.SegmentKey) (Evicted, error) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return Evicted{}, ErrClosed
	}
	e, ok := c.mu.entries[k]
	if ok && e.pins > 0 {
		c.mu.Unlock()
		return Evicted{}, fmt.Errorf("tier1: remove %s: %w", k, ErrPinned)
	}
	if _, busy := c.mu.compress[k]; busy || c.isRemovingLocked(k) {
		c.mu.Unlock()
		return Evicted{}, fmt.Errorf("tier1: remove %s: %w", k, ErrInProgress)
	}
	if ok {
		c.dropLocked(e)
	}
	c.mu.removing[k] = struct{}{}
	c.mu.Unlock()
	if !ok {
		path := c.Path(k)
		fi, err := c.fs.Stat(path)
		if err != nil {
			c.mu.Lock()
			delete(c.mu.removing, k)
			c.mu.Unlock()
			if vfs.IsNotExist(err) {
				return Evicted{}, fmt.Errorf("tier1: remove %s: %w", k, ErrNotCached)
			}
			return Evicted{}, fmt.Errorf("tier1: remove %s: %w", k, err)
		}
		e = &entry{key: k, info: CompressResult{Key: k, Path: path, CompressedBytes: fi.Size()}}
	}
	ev, err := c.removeFiles([]*entry{e}, "remove")
	if err != nil {
		return Evicted{}, err
	}
	return ev[0], nil
}

// removeFiles deletes the victims' files, syncs their directories and puts
// back any whose delete failed.
func (c *Cache) removeFiles(victims []*entry, why string) ([]Evicted, error) {
	var (
		out  []Evicted
		errs []error
		dirs = map[string]struct{}{}
	)
	for _, e := range victims {
		err := c.fs.Remove(e.info.Path)
		c.mu.Lock()
		delete(c.mu.removing, e.key)
		if err != nil && !vfs.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("tier1: evict %s: %w", e.key, err))
			if _, taken := c.mu.entries[e.key]; !taken && !c.mu.closed && e.elem != nil {
				c.admitLocked(e)
			}
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		dirs[WarmDir(c.cfg.DataDir, e.key.Stream)] = struct{}{}
		out = append(out, Evicted{Key: e.key, Path: e.info.Path, Bytes: e.info.CompressedBytes, Uploaded: e.uploaded})
		c.m.evictions.Inc()
		c.m.evictedBytes.Add(float64(e.info.CompressedBytes))
		c.log.Info("tier1_eviction", "stream_id", e.key.Stream, "segment_id", e.key.Segment,
			"reclaimed_bytes", e.info.CompressedBytes, "reason", why)
	}
	for d := range dirs {
		if err := c.fs.SyncDir(d); err != nil {
			errs = append(errs, fmt.Errorf("tier1: sync %s after eviction: %w", d, err))
		}
	}
	return out, errors.Join(errs...)
}

// Verified is what Cache.Verify found in a good artifact.
type Verified struct {
	// Bytes is the artifact's size; CRC64 the CRC-64/NVME of all of them,
	// the checksum its tier-2 object is uploaded with (an uploaded
	// artifact and its object are byte copies of each other).
	Bytes int64
	CRC64 uint64
}

// Verify decompresses k's cached artifact (pinned meanwhile) and checks it
// against exp (VerifyArtifact), then sums its bytes. ErrNotCached when k is
// not cached. The scrubber uses it.
func (c *Cache) Verify(ctx context.Context, exp Expected) (Verified, error) {
	a, err := c.OpenArtifact(exp.Key)
	if err != nil {
		return Verified{}, err
	}
	defer a.Close()
	if err := verifyAll(ctx, a, exp); err != nil {
		return Verified{}, err
	}
	crc, err := checksum.SumReaderAt(a.src, a.size, nil)
	if err != nil {
		return Verified{}, fmt.Errorf("tier1: %s: %w", a.name, err)
	}
	return Verified{Bytes: a.size, CRC64: crc}, nil
}

// OpenArtifact opens k's artifact for random access. The artifact is
// pinned (never evicted) until the returned Artifact is closed.
func (c *Cache) OpenArtifact(k types.SegmentKey) (*Artifact, error) {
	if err := c.Pin(k); err != nil {
		return nil, err
	}
	a, err := c.openPinned(k)
	if err != nil {
		_ = c.Unpin(k)
		return nil, err
	}
	return a, nil
}

func (c *Cache) openPinned(k types.SegmentKey) (*Artifact, error) {
	c.mu.Lock()
	e := c.mu.entries[k]
	path, size := e.info.Path, e.info.CompressedBytes
	c.mu.Unlock()
	f, err := c.fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tier1: open %s: %w", path, err)
	}
	a, err := OpenReaderAt(f, size, path)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	a.onClose = func() error {
		s := a.Stats()
		c.m.framesFetched.Add(float64(s.FramesFetched))
		c.m.fetchedBytes.Add(float64(s.Fetched()))
		err := f.Close()
		if uerr := c.Unpin(k); err == nil {
			err = uerr
		}
		return err
	}
	return a, nil
}

// Close stops both pools (running jobs are cancelled, queued ones fail
// with ErrClosed), waits for every worker, and unregisters the metrics.
// Artifacts stay on disk.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()
	c.compress.close()
	c.hydrate.close()
	c.m.unregister()
	return nil
}
