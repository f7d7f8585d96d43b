// Package fake is an in-memory reference implementation of
// pluginapi.Backend with fault injection.
//
// It passes the conformance suite, and its fault rules (Fault, Inject,
// ClearFaults) let host tests prove that the host survives bad backends:
// throttling with retry-after, 5xx, timeouts, a slow first byte,
// truncated streams, wrong bytes, wrong checksums, a Put that reports
// success but stores nothing, and a plugin that crashes mid-stream.
// Rules can be changed at any time, in-process through the methods here,
// or for a fake plugin process (cmd/aof2-plugin-fake) through a JSON
// control file named by the fault_file setting (WriteFaultFile).
package fake

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

// Options configure a fake.
type Options struct {
	// Capabilities default to everything; turn features off to test how a
	// host or the suite treats a backend without them.
	Capabilities *pluginapi.Capabilities
	// Limits override the defaults (MaxObjectSize 2 GiB).
	Limits *pluginapi.Limits
	// Seed makes rate-limited faults reproducible.
	Seed uint64
	// CrashExit is called by a Crash fault; a plugin binary sets it to
	// exit the process. Nil makes Crash fail the call as a dropped
	// connection instead.
	CrashExit func()
}

// Backend is the fake. Create it with New.
type Backend struct {
	opts   Options
	faults *faultSet

	mu struct {
		sync.Mutex
		objects map[string]*object
		gen     uint64
		chunk   uint32
		// crashMarker, when set, lets a Crash fault end the process only if
		// it can create this file: one crash across plugin restarts.
		crashMarker string
	}
}

type object struct {
	data []byte
	info pluginapi.ObjectInfo
}

var _ pluginapi.Backend = (*Backend)(nil)

// New returns an empty fake.
func New(opts Options) *Backend {
	b := &Backend{opts: opts, faults: newFaultSet(opts.Seed)}
	b.mu.objects = map[string]*object{}
	return b
}

// Inject replaces the armed fault rules. Rules are tried in order; the
// first that matches a call (and wins its Rate draw) is injected.
func (b *Backend) Inject(rules ...Fault) error { return b.faults.set(rules) }

// ClearFaults disarms every rule.
func (b *Backend) ClearFaults() { _ = b.faults.set(nil) }

// Injected counts the faults injected so far, by mode.
func (b *Backend) Injected() map[Mode]int { return b.faults.injected() }

// Len is the number of stored objects.
func (b *Backend) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.mu.objects)
}

// Rot flips a bit of the byte at off of the object stored under key and
// keeps its etag and stored checksum: damage at rest, which a full read
// must detect. The bytes are copied first (a reader holding the old slice
// is unaffected).
func (b *Backend) Rot(key string, off int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.mu.objects[key]
	if !ok {
		return pluginapi.Errorf(pluginapi.CodeNotFound, key, "no such object")
	}
	if off < 0 || off >= int64(len(o.data)) {
		return pluginapi.Errorf(pluginapi.CodeInvalidArgument, key, "offset %d outside the object's %d bytes", off, len(o.data))
	}
	data := append([]byte(nil), o.data...)
	data[off] ^= 0x40
	b.mu.objects[key] = &object{data: data, info: o.info}
	return nil
}

// Keys lists the stored keys in order, bypassing fault injection.
func (b *Backend) Keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.mu.objects))
}

// Stored returns what is stored under key, bypassing fault injection: for
// host tests that check invariants while faults are armed.
func (b *Backend) Stored(key string) (pluginapi.ObjectInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.mu.objects[key]
	if !ok {
		return pluginapi.ObjectInfo{}, false
	}
	return o.info, true
}

func (b *Backend) caps() pluginapi.Capabilities {
	if b.opts.Capabilities != nil {
		return *b.opts.Capabilities
	}
	return pluginapi.Capabilities{RangeGet: true, PutFile: true, GetFile: true, IfAbsent: true, IfMatch: true, List: true}
}

func unimplemented(feature string) error {
	return pluginapi.Errorf(pluginapi.CodeUnimplemented, "", "fake: %s disabled", feature)
}

func (b *Backend) Info(context.Context) (pluginapi.Info, error) {
	caps := b.caps()
	limits := pluginapi.Limits{MaxObjectSize: 2 << 30, MaxMetadataBytes: pluginapi.DefaultMaxMetadataBytes}
	if b.opts.Limits != nil {
		limits = *b.opts.Limits
	}
	return pluginapi.Info{
		Name: "fake", Version: "1.0.0",
		ContractMajor: pluginapi.ContractMajor, ContractMinor: pluginapi.ContractMinor,
		Capabilities: caps, Limits: limits,
	}, nil
}

// ConfigKeys are the settings the fake accepts.
var ConfigKeys = []string{"fault_file", "crash_marker"}

func (b *Backend) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	for k, v := range req.Config {
		switch k {
		case "fault_file":
			b.faults.mu.Lock()
			b.faults.file, b.faults.fileStat = v, ""
			b.faults.mu.Unlock()
		case "crash_marker":
			b.mu.Lock()
			b.mu.crashMarker = v
			b.mu.Unlock()
		default:
			return pluginapi.ConfigureResult{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "unknown setting %q (known: %s)", k, strings.Join(ConfigKeys, ", "))
		}
	}
	info, _ := b.Info(ctx)
	chunk := pluginapi.NegotiateChunkSize(req.ChunkSize, info.Limits)
	b.mu.Lock()
	b.mu.chunk = chunk
	b.mu.Unlock()
	return pluginapi.ConfigureResult{ChunkSize: chunk}, nil
}

func (b *Backend) Probe(ctx context.Context, req pluginapi.ProbeRequest) error {
	if err := b.callFault(ctx, OpProbe, req.WriteKey); err != nil {
		return err
	}
	if req.WriteKey == "" {
		return nil
	}
	data := []byte("aof2 probe")
	if _, err := b.Put(ctx, pluginapi.PutRequest{Key: req.WriteKey, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data)); err != nil {
		return err
	}
	_, rc, err := b.Get(ctx, pluginapi.GetRequest{Key: req.WriteKey})
	if err != nil {
		return err
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		return pluginapi.Errorf(pluginapi.CodeUnavailable, req.WriteKey, "probe read back %q (%v)", got, err)
	}
	return b.Delete(ctx, req.WriteKey)
}

// callFault injects the call-level faults (throttle, 5xx, timeout) for op.
func (b *Backend) callFault(ctx context.Context, op Op, key string) error {
	f, ok := b.faults.pick(op, key)
	if !ok {
		return nil
	}
	return b.applyCallFault(ctx, f, key)
}

func (b *Backend) applyCallFault(ctx context.Context, f Fault, key string) error {
	switch f.Mode {
	case Throttle:
		return pluginapi.ThrottledError(f.RetryAfter, "fake: injected throttling")
	case ServerError:
		return &pluginapi.Error{Code: pluginapi.CodeUnavailable, Key: key, Message: "fake: injected 503", Metadata: map[string]string{"backend_code": "503"}}
	case Timeout:
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// crash carries out a Crash fault. In a plugin process it exits (unless
// the crash marker says this crash already happened, in which case the
// call goes on normally and crash returns nil); in-process it fails the
// call as a dropped connection.
func (b *Backend) crash(key string) error {
	if b.opts.CrashExit == nil {
		return pluginapi.Errorf(pluginapi.CodeUnavailable, key, "fake: injected crash (connection dropped)")
	}
	b.mu.Lock()
	marker := b.mu.crashMarker
	b.mu.Unlock()
	if createMarker(marker) {
		b.opts.CrashExit()
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Backend) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	if err := pluginapi.ValidateKey(key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	f, hit := b.faults.pick(OpHead, key)
	if hit {
		if err := b.applyCallFault(ctx, f, key); err != nil {
			return pluginapi.ObjectInfo{}, err
		}
	}
	b.mu.Lock()
	o, ok := b.mu.objects[key]
	b.mu.Unlock()
	if !ok {
		return pluginapi.ObjectInfo{}, pluginapi.NotFoundError(key)
	}
	info := cloneInfo(o.info)
	if hit && f.Mode == WrongChecksum {
		info.CRC64 ^= 1
	}
	return info, nil
}

func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := pluginapi.ValidateKey(key); err != nil {
		return err
	}
	if err := b.callFault(ctx, OpDelete, key); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.mu.objects, key)
	b.mu.Unlock()
	return nil
}

func (b *Backend) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	if err := pluginapi.ValidatePrefix(req.Prefix); err != nil {
		return err
	}
	if !b.caps().List {
		return unimplemented("list")
	}
	if err := b.callFault(ctx, OpList, req.Prefix); err != nil {
		return err
	}
	size := int(req.PageSize)
	if size <= 0 {
		size = pluginapi.DefaultListPageSize
	}
	b.mu.Lock()
	var all []pluginapi.ObjectInfo
	for k, o := range b.mu.objects {
		if strings.HasPrefix(k, req.Prefix) && k > req.StartAfter {
			all = append(all, cloneInfo(o.info))
		}
	}
	b.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Key < all[j].Key })
	for chunk := range slices.Chunk(all, size) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := page(chunk); err != nil {
			return err
		}
	}
	return nil
}

func cloneInfo(i pluginapi.ObjectInfo) pluginapi.ObjectInfo {
	if i.Metadata != nil {
		md := make(map[string]string, len(i.Metadata))
		for k, v := range i.Metadata {
			md[k] = v
		}
		i.Metadata = md
	}
	return i
}

// createMarker reports whether the crash may happen: always without a
// marker path, else only for the caller that creates the file.
func createMarker(path string) bool {
	if path == "" {
		return true
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}
