package main

// The tier-2 half of `manifest verify`: every object a stream's manifest
// places in tier 2 is asked for by the key the manifest recorded, through
// the configured plugin, the way serve reaches it.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// Finding codes of the tier-2 check (docs/tiering.md#checking-tier-2-offline).
const (
	// codeTier2Missing: the manifest places the object in tier 2 and it is
	// not there.
	codeTier2Missing = "tier2_missing"
	// codeTier2Mismatch: an object is there but is not the one the manifest
	// recorded (etag, size, checksum or identity metadata), or the backend
	// reports it damaged.
	codeTier2Mismatch = "tier2_mismatch"
)

// tier2Error says tier 2 could not be checked: the plugin did not start,
// its probe failed, or a request failed for another reason than the object
// being missing or damaged. It is not a finding: the command fails (exit
// 4) without calling anything ok.
type tier2Error struct{ err error }

func (e tier2Error) Error() string {
	return fmt.Sprintf("tier 2 unreachable, nothing verified: %v (pass -skip-tier2 to verify the local manifests only)", e.err)
}

func (e tier2Error) Unwrap() error { return e.err }

// tier2Report is what the tier-2 check of one stream looked at.
type tier2Report struct {
	// Checked is false when tier 2 was not asked; Note says why.
	Checked bool   `json:"checked"`
	Note    string `json:"note,omitempty"`
	// Segments and Chunks count the objects checked (present or not);
	// PendingDeletes the absent ones a queued delete explains.
	Segments       int `json:"segments"`
	Chunks         int `json:"chunks"`
	PendingDeletes int `json:"pending_deletes,omitempty"`
}

// tier2Session is the configured plugin, launched and probed, and a
// tier-2 store over it.
type tier2Session struct {
	plugin *pluginhost.Plugin
	store  *tier2.Store
	// desc names what was checked, for the text output.
	desc    string
	checker *tier2Checker
}

// loadVerifyConfig loads the host configuration as serve would, with
// -data-dir and -plugin-dir overriding it, so that derived values (the fs
// root under data_dir) follow.
func loadVerifyConfig(path, dataDir, pluginDir string) (*config.Config, error) {
	var args []string
	if path != "" {
		args = append(args, "-config", path)
	}
	if dataDir != "" {
		args = append(args, "-data-dir", dataDir)
	}
	if pluginDir != "" {
		args = append(args, "-plugin-dir", pluginDir)
	}
	cfg, err := config.Load(args, os.Environ(), config.SkipPluginLookup())
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// openTier2 launches the configured plugin as `plugins check` does
// (binary lookup, sha256 pin, handshake, contract check, Configure, Probe)
// and opens a tier-2 store over it with the configured prefix, retries and
// breaker. Every failure is a tier2Error, and nothing is left running.
func openTier2(ctx context.Context, cfg *config.Config, logger hclog.Logger) (*tier2Session, error) {
	launch, err := cfg.PluginLaunch()
	if err != nil {
		return nil, tier2Error{err}
	}
	launch.Logger = logger
	p, err := pluginhost.Launch(ctx, launch)
	if err != nil {
		return nil, tier2Error{err}
	}
	tc := cfg.Tier2Config()
	info := p.Advertised
	tc.Info, tc.Logger = &info, logger
	st, err := tier2.New(p, tc)
	if err != nil {
		p.Kill()
		return nil, tier2Error{fmt.Errorf("tier-2 store: %w", err)}
	}
	src := cfg.File
	if src == "" {
		src = "no config file"
	}
	return &tier2Session{
		plugin: p, store: st,
		desc:    fmt.Sprintf("plugin %s (%s %s, %s), prefix %q, config: %s", launch.Name, info.Name, info.Version, launch.Path, cfg.Tier2.Prefix, src),
		checker: &tier2Checker{store: st, canList: info.Capabilities.List, workers: max(tc.MaxConcurrency, 1)},
	}, nil
}

// close stops the store and the plugin process.
func (s *tier2Session) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.store.Close(ctx) // a store op still running after 10s is cut off by Kill
	s.plugin.Kill()
}

// objectStore is what the check needs of tier 2 (a *tier2.Store).
type objectStore interface {
	Stat(ctx context.Context, key string) (pluginapi.ObjectInfo, error)
	ListStream(ctx context.Context, stream types.StreamID) (tier2.Listing, error)
	Layout() tier2.Layout
}

// tier2Checker checks a stream's tier-2 objects against its manifest.
type tier2Checker struct {
	store objectStore
	// canList: the backend lists, so chunks retention removed locally are
	// checked with one listing instead of a Head each.
	canList bool
	workers int
	// replica: the data directory is a read replica's, whose manifest
	// chunks are its own and never uploaded: only segments are checked.
	replica bool
}

// expected is one object the manifest places in tier 2.
type expected struct {
	key  string
	ref  tier2.Ref
	what string // "segment 3", "manifest chunk 12"
	file string // the local chunk file, if any
	etag string // recorded by the manifest ("" unknown)
	size int64  // expected size (-1 unknown)
	// absentOK: a delete of the key is queued, so absence is expected.
	absentOK bool
	// copies says where a copy remains locally ("" none), for a missing
	// segment's message.
	copies string
}

// check returns the findings about stream's tier-2 objects: every segment
// with a recorded tier-2 key (Head of that key: present, with the recorded
// etag and consistent metadata) and every sealed manifest chunk flagged
// uploaded, or removed locally by retention (which only removes uploaded
// chunks), at its layout key.
func (c *tier2Checker) check(ctx context.Context, stream types.StreamID, in *manifest.Inspection) ([]manifest.Finding, tier2Report, error) {
	rep := tier2Report{Checked: true}
	layout := c.store.Layout()
	var exps []expected
	for _, s := range in.Segments {
		if s.Tier2.Key == "" {
			continue
		}
		var copies []string
		if s.Tier0 {
			copies = append(copies, "tier 0")
		}
		if s.Tier1.State == manifest.Tier1Compressed {
			copies = append(copies, "tier 1")
		}
		exps = append(exps, expected{key: s.Tier2.Key, ref: tier2.Ref{Kind: tier2.KindSegment, Stream: stream, ID: uint64(s.SegmentID)},
			what: fmt.Sprintf("segment %d", s.SegmentID), etag: s.Tier2.ETag, size: -1,
			absentOK: containsKey(s.Tier2.PendingDeletes, s.Tier2.Key), copies: strings.Join(copies, " and ")})
		rep.Segments++
	}
	first, haveLocal := uint64(0), false
	var local []expected
	chunks := in.Chunks
	if c.replica {
		chunks = nil
		rep.Note = "a read replica's data directory: its manifest chunks are its own, not in tier 2; segments checked only"
	}
	for _, ch := range chunks {
		if !ch.Committed {
			continue
		}
		if !haveLocal {
			first, haveLocal = ch.Index, true
		}
		if ch.Header == nil || !ch.Header.Flags.Uploaded() {
			continue
		}
		local = append(local, chunkExpected(layout, stream, ch.Index, ch.File, ch.FileSize))
	}
	var findings []manifest.Finding
	if haveLocal && first > 0 {
		rep.Chunks += int(first)
		if c.canList {
			f, err := c.removedChunks(ctx, stream, first)
			if err != nil {
				return nil, rep, err
			}
			findings = append(findings, f...)
		} else {
			for i := range first {
				exps = append(exps, chunkExpected(layout, stream, i, "", -1))
			}
		}
	}
	exps = append(exps, local...)
	rep.Chunks += len(local)
	res, err := c.statAll(ctx, exps)
	if err != nil {
		return nil, rep, err
	}
	for i, e := range exps {
		f, pending := judge(e, res[i].info, res[i].err)
		if pending {
			rep.PendingDeletes++
		}
		findings = append(findings, f...)
	}
	return findings, rep, nil
}

func chunkExpected(layout tier2.Layout, stream types.StreamID, index uint64, file string, size int64) expected {
	return expected{key: layout.ManifestChunkKey(stream, index), ref: tier2.Ref{Kind: tier2.KindManifestChunk, Stream: stream, ID: index},
		what: fmt.Sprintf("manifest chunk %d", index), file: file, size: size}
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// removedChunks checks with one listing that chunks 0 to first-1, which
// local retention removed after their upload, are in tier 2 — except
// those the host trimmed from tier 2 because two uploaded snapshots cover
// them (docs/tiering.md#the-tier-2-manifest); one finding per run of
// missing chunks.
func (c *tier2Checker) removedChunks(ctx context.Context, stream types.StreamID, first uint64) ([]manifest.Finding, error) {
	l, err := c.store.ListStream(ctx, stream)
	if err != nil {
		return nil, tier2Error{fmt.Errorf("list stream %d: %w", stream, err)}
	}
	present := make(map[uint64]bool, len(l.ManifestChunks))
	for _, o := range l.ManifestChunks {
		present[o.Ref.ID] = true
	}
	trimmed, err := c.trimPoint(ctx, l.Snapshots, present)
	if err != nil {
		return nil, err
	}
	layout := c.store.Layout()
	var out []manifest.Finding
	for i := trimmed; i < first; {
		if present[i] {
			i++
			continue
		}
		j := i
		for j+1 < first && !present[j+1] {
			j++
		}
		msg := fmt.Sprintf("manifest chunk %d was removed locally after its upload but is not in tier 2", i)
		if j > i {
			msg = fmt.Sprintf("manifest chunks %d to %d (%d objects, the first named) were removed locally after their upload but are not in tier 2", i, j, j-i+1)
		}
		out = append(out, manifest.Finding{Severity: manifest.SeverityError, Code: codeTier2Missing, Key: layout.ManifestChunkKey(stream, i), Message: msg})
		i = j + 1
	}
	return out, nil
}

// trimPoint is the chunk index below which the host may have trimmed a
// stream's tier-2 manifest: the host trims below the position of the
// older of its two newest uploaded snapshots once that position's chunk
// is in tier 2, so any snapshot with a newer one beside it whose
// position's chunk tier 2 holds may have been that one (a host stopped
// mid-trim leaves older snapshots, or a newer one whose chunk is not up
// yet). The highest such position; 0 when there is none.
func (c *tier2Checker) trimPoint(ctx context.Context, snaps []tier2.Listed, chunks map[uint64]bool) (uint64, error) {
	type pos struct{ id, chunk uint64 }
	var found []pos
	for _, o := range snaps {
		info, err := c.store.Stat(ctx, o.Info.Key)
		if errors.Is(err, pluginapi.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, tier2Error{fmt.Errorf("head %s: %w", o.Info.Key, err)}
		}
		if md, err := tier2.ParseMetadata(info.Metadata); err == nil && md.HasPosition {
			found = append(found, pos{o.Ref.ID, md.SnapshotChunk})
		}
	}
	slices.SortFunc(found, func(a, b pos) int { return cmp.Compare(a.id, b.id) })
	var point uint64
	for i, p := range found {
		if i < len(found)-1 && chunks[p.chunk] {
			point = max(point, p.chunk)
		}
	}
	return point, nil
}

type statResult struct {
	info pluginapi.ObjectInfo
	err  error
}

// objectProblem reports whether a Stat error is about the object (a
// finding), not about reaching tier 2.
func objectProblem(err error) bool {
	return errors.Is(err, pluginapi.ErrNotFound) || errors.Is(err, pluginapi.ErrChecksum) || errors.Is(err, pluginapi.ErrInvalidKey)
}

// statAll Heads every expected object, c.workers at a time (the store
// bounds its requests too). Any error that is not about the object itself
// stops the check.
func (c *tier2Checker) statAll(parent context.Context, exps []expected) ([]statResult, error) {
	res := make([]statResult, len(exps))
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(c.workers, len(exps)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(exps) {
					return
				}
				info, err := c.store.Stat(ctx, exps[i].key)
				res[i] = statResult{info, err}
				if err != nil && !objectProblem(err) {
					mu.Lock()
					if firstErr == nil {
						firstErr = tier2Error{fmt.Errorf("%s: %w", exps[i].what, err)}
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return nil, err // interrupted: not tier 2's fault
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return res, nil
}

// judge turns one Head into findings. pending reports an absent object
// whose delete is queued (not a finding).
func judge(e expected, info pluginapi.ObjectInfo, err error) (f []manifest.Finding, pending bool) {
	add := func(code, format string, a ...any) {
		f = append(f, manifest.Finding{Severity: manifest.SeverityError, Code: code, File: e.file, Key: e.key, Message: fmt.Sprintf(format, a...)})
	}
	switch {
	case errors.Is(err, pluginapi.ErrNotFound):
		if e.absentOK {
			return nil, true
		}
		switch {
		case e.ref.Kind != tier2.KindSegment:
			add(codeTier2Missing, "%s is flagged uploaded but is not in tier 2", e.what)
		case e.copies != "":
			add(codeTier2Missing, "%s: the manifest records it in tier 2 but the object is not there; a copy remains in %s (the host uploads it again at its next start)", e.what, e.copies)
		default:
			add(codeTier2Missing, "%s: the manifest records it in tier 2 but the object is not there, and no local copy remains: its records are lost unless the object is restored", e.what)
		}
		return f, false
	case errors.Is(err, pluginapi.ErrInvalidKey):
		add(codeTier2Mismatch, "%s: the manifest records a key tier 2 refuses: %v", e.what, err)
		return f, false
	case err != nil:
		add(codeTier2Mismatch, "%s: the backend reports the object damaged: %v", e.what, err)
		return f, false
	}
	if p := mismatches(e, info); len(p) > 0 {
		add(codeTier2Mismatch, "%s is not the object the manifest recorded: %s", e.what, strings.Join(p, "; "))
	}
	return f, false
}

// mismatches compares a present object with what the manifest and the
// object's own metadata say it must be.
func mismatches(e expected, info pluginapi.ObjectInfo) []string {
	var p []string
	if e.etag != "" && info.ETag != e.etag {
		p = append(p, fmt.Sprintf("etag %q, the manifest recorded %q", info.ETag, e.etag))
	}
	if e.size >= 0 && info.Size != uint64(e.size) {
		p = append(p, fmt.Sprintf("%d bytes, the local file has %d", info.Size, e.size))
	}
	md, err := tier2.ParseMetadata(info.Metadata)
	if err != nil {
		return append(p, err.Error())
	}
	if k, ok := info.Metadata[tier2.MetaKind]; ok && md.Ref.Kind != e.ref.Kind {
		p = append(p, fmt.Sprintf("metadata kind %q, want %q", k, e.ref.Kind))
	}
	if _, ok := info.Metadata[tier2.MetaStream]; ok && md.Ref.Stream != e.ref.Stream {
		p = append(p, fmt.Sprintf("metadata stream %d, want %d", md.Ref.Stream, e.ref.Stream))
	}
	if md.Ref.Kind == e.ref.Kind {
		if v, ok := info.Metadata[idMetaKey(e.ref.Kind)]; ok && md.Ref.ID != e.ref.ID {
			p = append(p, fmt.Sprintf("metadata %s %s, want %d", idMetaKey(e.ref.Kind), v, e.ref.ID))
		}
	}
	if _, ok := info.Metadata[tier2.MetaSize]; ok && md.Size != info.Size {
		p = append(p, fmt.Sprintf("%d bytes stored, uploaded as %d", info.Size, md.Size))
	}
	if md.HasCRC64 && info.HasCRC64 && md.CRC64 != info.CRC64 {
		p = append(p, fmt.Sprintf("stored checksum %016x, uploaded as %016x", info.CRC64, md.CRC64))
	}
	return p
}

// idMetaKey is the metadata key holding the id of an object of kind k.
func idMetaKey(k tier2.Kind) string {
	if k == tier2.KindManifestChunk {
		return tier2.MetaChunk
	}
	return tier2.MetaSegment
}

// summary is the parenthesis after a stream's "ok".
func (r tier2Report) summary() string {
	if !r.Checked {
		return "local only: tier 2 not checked"
	}
	s := fmt.Sprintf("%d segment and %d manifest chunk objects present in tier 2", r.Segments-r.PendingDeletes, r.Chunks)
	if r.PendingDeletes > 0 {
		s += fmt.Sprintf("; %d already deleted with the delete pending", r.PendingDeletes)
	}
	if r.Note != "" {
		s += "; " + r.Note
	}
	return s
}
