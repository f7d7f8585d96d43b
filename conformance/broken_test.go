package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

// The suite is only worth something if it fails broken backends, naming
// the rule they break. Each variant below is the fake with one realistic
// bug; the suite must fail it and report the variant's rule, and every
// rule failure it prints must say what it got and what it wanted.
func TestSuiteCatchesBrokenBackends(t *testing.T) {
	faulty := func(faults ...fake.Fault) func(*fake.Backend) pluginapi.Backend {
		return func(b *fake.Backend) pluginapi.Backend {
			require.NoError(t, b.Inject(faults...))
			return b
		}
	}
	cases := []struct {
		name string
		wrap func(*fake.Backend) pluginapi.Backend
		rule string // the rule the suite must report
		run  string // the behaviours to run (Options.Run)
	}{
		// Conditional writes and races.
		{"if_absent as Head then Put", func(b *fake.Backend) pluginapi.Backend { return racyIfAbsent{b} }, "IF-ABSENT-RACE", "RaceIfAbsent"},
		{"if_match as Head then Put", func(b *fake.Backend) pluginapi.Backend { return racyIfMatch{b} }, "IF-MATCH-RACE", "RaceIfMatch"},
		{"Delete applied after a later Put", func(b *fake.Backend) pluginapi.Backend { return &lazyDelete{Backend: b} }, "PUT-DELETE-RACE", "RacePutDelete"},
		{"List busy while a Put is in flight", func(b *fake.Backend) pluginapi.Backend { return &busyList{Backend: b} }, "LIST-CONCURRENT", "ListDuringWrites"},
		// Reads.
		{"ignores ranges", func(b *fake.Backend) pluginapi.Backend { return ignoresRanges{b} }, "RANGE", "^Ranges$"},
		{"empty read instead of OutOfRange", func(b *fake.Backend) pluginapi.Backend { return noOutOfRange{b} }, "RANGE", "RangeOutOfBounds"},
		{"truncated Get without error", faulty(fake.Fault{Mode: fake.Truncate, Ops: []fake.Op{fake.OpGet}, KeyPrefix: "aof2-conformance-", AfterBytes: 100}), "ROUND-TRIP", "Sizes"},
		{"wrong bytes on Get", faulty(fake.Fault{Mode: fake.WrongBytes, Ops: []fake.Op{fake.OpGet}, KeyPrefix: "aof2-conformance-"}), "ROUND-TRIP", "Sizes|Ranges"},
		{"Put acknowledged, nothing stored", faulty(fake.Fault{Mode: fake.DropPut, Ops: []fake.Op{fake.OpPut}}), "ROUND-TRIP", "Sizes"},
		// List.
		{"List unordered", func(b *fake.Backend) pluginapi.Backend { return unsortedList{b} }, "LIST-ORDER", "ListPaging"},
		{"List with duplicates", func(b *fake.Backend) pluginapi.Backend { return duplicateList{b} }, "LIST-ORDER", "ListPaging"},
		{"List without size and etag", func(b *fake.Backend) pluginapi.Backend { return bareList{b} }, "LIST-INFO", "ListPaging"},
		// Head and metadata.
		{"Head without ModTime", func(b *fake.Backend) pluginapi.Backend { return headNoModTime{b} }, "HEAD", "^Head$"},
		{"Head with a wrong checksum", faulty(fake.Fault{Mode: fake.WrongChecksum, Ops: []fake.Op{fake.OpHead}}), "HEAD", "^Head$"},
		{"metadata dropped", func(b *fake.Backend) pluginapi.Backend { return dropsMetadata{b} }, "METADATA", "^Metadata$"},
		// Delete and errors.
		{"Delete not idempotent", func(b *fake.Backend) pluginapi.Backend { return strictDelete{b} }, "DELETE", "IdempotentDelete"},
		{"missing key mapped to Unavailable", func(b *fake.Backend) pluginapi.Backend { return wrongNotFound{b} }, "NOT-FOUND", "^NotFound$"},
		// Integrity.
		{"checksum not verified before visibility", func(b *fake.Backend) pluginapi.Backend { return commitsAnyway{b} }, "CHECKSUM", "ChecksumMismatch"},
		{"partial object visible on cancel", func(b *fake.Backend) pluginapi.Backend { return commitsOnCancel{b} }, "CANCEL", "CancelledPut"},
		{"placeholder visible during Put", func(b *fake.Backend) pluginapi.Backend { return placeholderPut{b} }, "VISIBILITY", "VisibleOnlyAfterPut"},
		// Configuration.
		{"oversize chunk: negotiates over its own maximum", func(b *fake.Backend) pluginapi.Backend { return oversizeChunk{b} }, "CHUNK-NEGOTIATE", "ChunkNegotiation"},
		{"accepts unknown settings", func(b *fake.Backend) pluginapi.Backend { return lenientConfig{b} }, "CONFIG-UNKNOWN", "ConfigUnknownSetting"},
		// In-process validation (what the gRPC server hides).
		{"metadata not validated in-process", func(b *fake.Backend) pluginapi.Backend { return lenientMetadata{b} }, "DIRECT-VALIDATION", "InProcessValidation"},
		{"checksum not verified in-process", func(b *fake.Backend) pluginapi.Backend { return trustsTheServer{b} }, "DIRECT-VALIDATION", "InProcessValidation"},
		// Contract clauses suite 1.1 stated but did not check.
		{"List etag differs from Head's", func(b *fake.Backend) pluginapi.Backend { return quotedListETag{b} }, "LIST-INFO", "ListPaging"},
		{"PutFile reads only the declared size", func(b *fake.Backend) pluginapi.Backend { return prefixPutFile{b} }, "FILES", "FileErrors"},
		{"if_match ignored on ranged Get", func(b *fake.Backend) pluginapi.Backend { return rangeIgnoresIfMatch{b} }, "IF-MATCH", "^IfMatch$"},
		{"if_match ignored by GetFile", func(b *fake.Backend) pluginapi.Backend { return getFileIgnoresIfMatch{b} }, "IF-MATCH", "^IfMatch$"},
	}
	require.GreaterOrEqual(t, len(cases), 14)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &conformance.InProcess{New: func() (pluginapi.Backend, error) { return c.wrap(fake.New(fake.Options{})), nil }}
			rep := conformance.Certify(t.Context(), h, conformance.Options{Quick: true, Run: c.run, Timeout: 30 * time.Second})
			require.False(t, rep.OK(), "the suite passed a broken backend")
			var broken []string
			for _, cs := range rep.Cases {
				broken = append(broken, cs.Rules...)
				for _, m := range cs.Messages {
					if strings.HasPrefix(m, "[") {
						assert.True(t, strings.Contains(m, "got") && strings.Contains(m, "want"), "a failure that does not say got and want: %s", m)
					}
				}
				if cs.Name == "Cleanup" {
					// One message for failed Deletes, one for what is left.
					assert.LessOrEqual(t, len(cs.Messages), 2, "Cleanup repeats itself: %q", cs.Messages)
				}
			}
			assert.Contains(t, broken, c.rule, "rule %s not reported; failures: %v", c.rule, broken)
		})
	}
}

func alreadyExists(key string) error {
	return &pluginapi.Error{Code: pluginapi.CodeAlreadyExists, Key: key}
}

// racyIfAbsent checks, then writes: two writers can both see no object.
type racyIfAbsent struct{ *fake.Backend }

func (b racyIfAbsent) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	if req.IfAbsent {
		if _, err := b.Head(ctx, req.Key); err == nil {
			return pluginapi.ObjectInfo{}, alreadyExists(req.Key)
		}
		req.IfAbsent = false
	}
	return b.Backend.Put(ctx, req, body)
}

// racyIfMatch compares the etag, then writes unconditionally.
type racyIfMatch struct{ *fake.Backend }

func (b racyIfMatch) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	if req.IfMatch != "" {
		cur, err := b.Head(ctx, req.Key)
		if err != nil || cur.ETag != req.IfMatch {
			return pluginapi.ObjectInfo{}, pluginapi.Errorf(pluginapi.CodePrecondition, req.Key, "etag differs")
		}
		req.IfMatch = ""
	}
	return b.Backend.Put(ctx, req, body)
}

// lazyDelete acknowledges a Delete at once and carries it out later: before
// the next read, or after the next Put's commit. Read back at once it looks
// right; a Put in flight during the Delete is undone after it committed.
type lazyDelete struct {
	*fake.Backend
	mu      sync.Mutex
	pending []string
}

func (b *lazyDelete) apply(ctx context.Context) {
	b.mu.Lock()
	keys := b.pending
	b.pending = nil
	b.mu.Unlock()
	for _, k := range keys {
		_ = b.Backend.Delete(ctx, k)
	}
}

func (b *lazyDelete) Delete(ctx context.Context, key string) error {
	if err := pluginapi.ValidateKey(key); err != nil {
		return err
	}
	b.mu.Lock()
	b.pending = append(b.pending, key)
	b.mu.Unlock()
	return nil
}

func (b *lazyDelete) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	info, err := b.Backend.Put(ctx, req, body)
	b.apply(context.WithoutCancel(ctx))
	return info, err
}

func (b *lazyDelete) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	b.apply(ctx)
	return b.Backend.Head(ctx, key)
}

func (b *lazyDelete) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	b.apply(ctx)
	return b.Backend.Get(ctx, req)
}

func (b *lazyDelete) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	b.apply(ctx)
	return b.Backend.List(ctx, req, page)
}

// busyList refuses to List while any Put is in flight (a lock shared
// with writers).
type busyList struct {
	*fake.Backend
	writing atomic.Int32
}

func (b *busyList) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	b.writing.Add(1)
	defer b.writing.Add(-1)
	return b.Backend.Put(ctx, req, body)
}

func (b *busyList) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	if b.writing.Load() > 0 {
		return pluginapi.Errorf(pluginapi.CodeUnavailable, req.Prefix, "a write holds the index")
	}
	return b.Backend.List(ctx, req, page)
}

// ignoresRanges serves the whole object whatever range was asked.
type ignoresRanges struct{ *fake.Backend }

func (b ignoresRanges) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	req.Offset, req.Length = 0, 0
	return b.Backend.Get(ctx, req)
}

// noOutOfRange answers an empty read for an offset past the end.
type noOutOfRange struct{ *fake.Backend }

func (b noOutOfRange) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	info, err := b.Head(ctx, req.Key)
	if err == nil && req.Offset > 0 && req.Offset >= info.Size {
		return pluginapi.ObjectRange{Info: info, Offset: req.Offset}, io.NopCloser(bytes.NewReader(nil)), nil
	}
	return b.Backend.Get(ctx, req)
}

func listed(ctx context.Context, b *fake.Backend, req pluginapi.ListRequest) ([]pluginapi.ObjectInfo, error) {
	var all []pluginapi.ObjectInfo
	err := b.List(ctx, req, func(p []pluginapi.ObjectInfo) error { all = append(all, p...); return nil })
	return all, err
}

type unsortedList struct{ *fake.Backend }

func (b unsortedList) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	all, err := listed(ctx, b.Backend, req)
	if err != nil || len(all) == 0 {
		return err
	}
	slices.Reverse(all)
	return page(all)
}

// duplicateList lists every object twice, in pages of one.
type duplicateList struct{ *fake.Backend }

func (b duplicateList) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	all, err := listed(ctx, b.Backend, req)
	if err != nil {
		return err
	}
	for _, o := range all {
		for range 2 {
			if err := page([]pluginapi.ObjectInfo{o}); err != nil {
				return err
			}
		}
	}
	return nil
}

// bareList lists keys only, as a naive directory walk would.
type bareList struct{ *fake.Backend }

func (b bareList) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	return b.Backend.List(ctx, req, func(p []pluginapi.ObjectInfo) error {
		bare := make([]pluginapi.ObjectInfo, len(p))
		for i, o := range p {
			bare[i] = pluginapi.ObjectInfo{Key: o.Key}
		}
		return page(bare)
	})
}

type headNoModTime struct{ *fake.Backend }

func (b headNoModTime) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	info, err := b.Backend.Head(ctx, key)
	info.ModTime = time.Time{}
	return info, err
}

type dropsMetadata struct{ *fake.Backend }

func (b dropsMetadata) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	req.Metadata = nil
	return b.Backend.Put(ctx, req, body)
}

type strictDelete struct{ *fake.Backend }

func (b strictDelete) Delete(ctx context.Context, key string) error {
	if _, err := b.Head(ctx, key); err != nil {
		return err
	}
	return b.Backend.Delete(ctx, key)
}

// wrongNotFound reports a missing key as a server error.
type wrongNotFound struct{ *fake.Backend }

func unavailable(err error) error {
	if errors.Is(err, pluginapi.ErrNotFound) {
		return pluginapi.Errorf(pluginapi.CodeUnavailable, "", "404 from the store: %v", err)
	}
	return err
}

func (b wrongNotFound) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	info, err := b.Backend.Head(ctx, key)
	return info, unavailable(err)
}

func (b wrongNotFound) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	rng, rc, err := b.Backend.Get(ctx, req)
	return rng, rc, unavailable(err)
}

// commitsAnyway stores whatever arrived even when the body failed.
type commitsAnyway struct{ *fake.Backend }

func (b commitsAnyway) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	data, _ := io.ReadAll(body)
	req.Size, req.CRC64 = uint64(len(data)), pluginapi.CRC64(data)
	info, err := b.Backend.Put(context.WithoutCancel(ctx), req, bytes.NewReader(data))
	return info, errors.Join(err, ctx.Err())
}

// commitsOnCancel stores the bytes that arrived when the stream broke off
// (its caller gave up), though not when they fail their checksum.
type commitsOnCancel struct{ *fake.Backend }

func (b commitsOnCancel) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		if !errors.Is(err, pluginapi.ErrChecksum) {
			partial := pluginapi.PutRequest{Key: req.Key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}
			_, _ = b.Backend.Put(context.WithoutCancel(ctx), partial, bytes.NewReader(data))
		}
		return pluginapi.ObjectInfo{}, err
	}
	return b.Backend.Put(ctx, req, bytes.NewReader(data))
}

// placeholderPut creates an empty object first, as a backend that opens
// the destination before writing into it.
type placeholderPut struct{ *fake.Backend }

func (b placeholderPut) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	if _, err := b.Backend.Head(ctx, req.Key); errors.Is(err, pluginapi.ErrNotFound) {
		_, _ = b.Backend.Put(ctx, pluginapi.PutRequest{Key: req.Key, CRC64: pluginapi.CRC64(nil)}, bytes.NewReader(nil))
	}
	return b.Backend.Put(ctx, req, body)
}

// oversizeChunk advertises a 256 KiB maximum chunk and picks 1 MiB.
type oversizeChunk struct{ *fake.Backend }

func (b oversizeChunk) Info(ctx context.Context) (pluginapi.Info, error) {
	info, err := b.Backend.Info(ctx)
	info.Limits.MaxChunkSize = 256 << 10
	return info, err
}

func (b oversizeChunk) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	if _, err := b.Backend.Configure(ctx, req); err != nil {
		return pluginapi.ConfigureResult{}, err
	}
	return pluginapi.ConfigureResult{ChunkSize: 1 << 20}, nil
}

type lenientConfig struct{ *fake.Backend }

func (b lenientConfig) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	delete(req.Config, "aof2_conformance_no_such_setting")
	return b.Backend.Configure(ctx, req)
}

// lenientMetadata stores what it can of malformed metadata instead of
// refusing it (the gRPC server refuses first, so only in-process shows).
type lenientMetadata struct{ *fake.Backend }

func (b lenientMetadata) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	if pluginapi.ValidateMetadata(req.Metadata, 0) != nil {
		req.Metadata = nil
	}
	return b.Backend.Put(ctx, req, body)
}

// trustsTheServer relies on the gRPC server's CheckPut and takes the
// body's own size and checksum.
type trustsTheServer struct{ *fake.Backend }

func (b trustsTheServer) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	req.Size, req.CRC64 = uint64(len(data)), pluginapi.CRC64(data)
	return b.Backend.Put(ctx, req, bytes.NewReader(data))
}
