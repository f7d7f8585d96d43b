package pluginapi

import (
	"context"
	"io"
	"time"
)

// Backend is what a tier-2 backend implements, and what the host calls.
// The host gets a Backend whose methods are RPCs to a plugin process; a
// plugin hands its own Backend to Serve.
//
// Each requirement below names, in brackets, the conformance rule that
// checks it (conformance/rules.go; a failure prints "[RULE-ID] rule text:
// detail"). docs/plugin-contract.md is the same contract as a reference,
// with the error table, the key rules and what the host does without each
// capability.
//
// Every method must honour ctx: when it is cancelled the call returns
// promptly with ctx.Err() and leaves no partial object visible [CANCEL].
// Methods are called concurrently, on the same and on different keys
// [CONCURRENCY].
//
// Errors must match the contract's sentinels (return an *Error, or wrap a
// sentinel with %w) so they map onto the error table in
// docs/plugin-contract.md#errors [ERROR-DETAILS]; an error about an object
// names its key (Error.Key). The adapters in this package validate keys,
// metadata, chunk framing, staging paths and checksums before a call
// reaches the backend, but a Backend used in-process must not rely on
// that: it validates on its own exactly as the plugin path does
// [DIRECT-VALIDATION] ([ValidatePutRequest], [ValidateKey] and [CheckPut]
// are cheap). A key that fails
// ValidateKey ("x/", "a//b", "../a", "") can never name an object: every
// method, Head and Delete included, answers ErrInvalidKey for it, never
// ErrNotFound or success [INVALID-KEY].
//
// A Backend that holds resources implements io.Closer: Serve calls Close
// on the way out, bounded to 1.5 s, and the process must exit promptly
// when the host shuts it down [EXIT] (Serve and Main see to it; a backend
// must not keep the process alive after Close).
type Backend interface {
	// Info describes the backend: ContractMajor = ContractMajor, a
	// non-empty Name, Limits.MaxChunkSize 0 or at least MinChunkSize
	// [INFO]. It must work before Configure and return the same answer
	// after it [INFO]. Capabilities it does not advertise must answer
	// ErrUnimplemented [UNIMPLEMENTED].
	Info(ctx context.Context) (Info, error)

	// Configure applies settings and picks the chunk size. Unknown or bad
	// settings fail with ErrInvalidConfig naming the setting
	// [CONFIG-UNKNOWN]; secrets in req.Config must never be echoed in
	// errors or logs. The chosen ChunkSize is within [MinChunkSize,
	// min(req.ChunkSize, Limits.MaxChunkSize)] when the host proposes one
	// (return 0 to have NegotiateChunkSize pick it) [CHUNK-NEGOTIATE]. A
	// host that re-attaches may call Configure again; the new settings
	// replace the old.
	Configure(ctx context.Context, req ConfigureRequest) (ConfigureResult, error)

	// Probe reports whether the backend is usable now (credentials valid,
	// bucket reachable). With req.WriteKey set it also writes, reads back
	// and deletes that key, leaving nothing behind [PROBE].
	Probe(ctx context.Context, req ProbeRequest) error

	// Put stores the object read from body. body yields exactly req.Size
	// bytes whose CRC-64/NVME is req.CRC64, then io.EOF; a body that breaks
	// that promise returns an error matching ErrChecksum instead of io.EOF,
	// and the backend must then abort, storing nothing and leaving any
	// previous version intact [CHECKSUM]. Commit only on io.EOF.
	//
	// The object becomes visible (to Head, Get and List) only after body
	// returned io.EOF and the write is durable [VISIBILITY]; a failed or
	// cancelled Put leaves the previous state (no object, or the old one)
	// untouched [CANCEL]. The new version replaces the old atomically: a
	// reader sees one whole version, never a mix [CONCURRENCY]. Bytes may
	// arrive in chunks of any size up to the negotiated one [CHUNKING]. A
	// malformed Put stream (no header first, offsets not consecutive, a
	// chunk over the advertised maximum) fails with ErrInvalidArgument and
	// stores nothing [FRAMING]; pluginapi.Server checks the framing before
	// the body reaches Put.
	//
	// The result carries req.Key, req.Size, req.CRC64 (HasCRC64) and a
	// non-empty ETag [PUT-ACK] that differs from every earlier version's,
	// even for identical bytes [OVERWRITE]; Get and Head then return the
	// same bytes [ROUND-TRIP] and etag [HEAD]. ModTime is the time the
	// object became visible (see ObjectInfo.ModTime). A 64 MiB object (or
	// one of Limits.MaxObjectSize, if that is lower) round-trips [LARGE].
	//
	// Preconditions: IfAbsent fails with ErrAlreadyExists if the key exists
	// [IF-ABSENT]; IfMatch fails with ErrPrecondition unless the current
	// etag equals it, and a missing object fails too [IF-MATCH]. A refused
	// write leaves the object untouched. Check-and-write is atomic: of
	// Puts racing IfAbsent on one missing key exactly one succeeds and the
	// rest fail with ErrAlreadyExists [IF-ABSENT-RACE]; of Puts racing
	// IfMatch on the same current etag exactly one succeeds and the rest
	// fail with ErrPrecondition [IF-MATCH-RACE]; a Head-then-Put is not
	// enough.
	// Metadata up to Limits.MaxMetadataBytes is stored and returned
	// unchanged; invalid or oversized metadata fails with
	// ErrInvalidArgument and stores nothing [METADATA].
	Put(ctx context.Context, req PutRequest, body io.Reader) (ObjectInfo, error)

	// PutFile is Put with the bytes read from the local file at path, with
	// the same guarantees. The backend verifies req.Size and req.CRC64
	// against what it read before the object becomes visible (ErrChecksum
	// otherwise, nothing stored); a path that is relative, unclean, not a
	// regular file, missing or outside the staging directory fails with
	// ErrInvalidArgument [FILES]. Optional: backends without
	// Capabilities.PutFile return ErrUnimplemented [UNIMPLEMENTED].
	PutFile(ctx context.Context, req PutRequest, path string) (ObjectInfo, error)

	// Get opens a range of an object. The result describes the whole object
	// (as Head would) and the range actually served [ROUND-TRIP]. Length 0
	// in req reads to the end and a range running past the end is clipped
	// to it; an offset at or beyond the end of a non-empty object fails
	// with ErrOutOfRange, offset 0 of an empty object is valid
	// (ResolveRange implements this) [RANGE]. A missing key fails with
	// ErrNotFound naming the key [NOT-FOUND], an IfMatch that differs with
	// ErrPrecondition [IF-MATCH]. The caller must Close the reader.
	// Backends without Capabilities.RangeGet must still serve Offset 0,
	// Length 0 and return ErrUnimplemented for any other range
	// [UNIMPLEMENTED].
	Get(ctx context.Context, req GetRequest) (ObjectRange, io.ReadCloser, error)

	// GetFile writes the range Get would return into a new local file at
	// path (created, or truncated if it exists) [FILES]. On error the file
	// may be partial; the caller removes it. A missing key fails with
	// ErrNotFound [NOT-FOUND]. Optional, as PutFile.
	GetFile(ctx context.Context, req GetRequest, path string) (ObjectRange, error)

	// Head describes an object: Key, Size, the ETag the Put returned,
	// CRC64 with HasCRC64, Metadata as stored, and a non-zero ModTime
	// [HEAD]. A missing key fails with ErrNotFound naming the key
	// [NOT-FOUND]; an invalid key, such as "x/", with ErrInvalidKey
	// [INVALID-KEY].
	Head(ctx context.Context, key string) (ObjectInfo, error)

	// List calls page with successive pages of the objects whose key starts
	// with req.Prefix and sorts (byte-wise) after req.StartAfter, which
	// need not exist [LIST-PREFIX]; each key once, in ascending byte order
	// (not directory order: "a.b" < "a/x"), at most req.PageSize per page
	// (0: backend default, DefaultListPageSize) [LIST-ORDER]. Every entry
	// carries its Key, Size and a non-empty ETag [LIST-INFO]. A non-nil
	// error from page stops the listing and List returns it [LIST-ORDER].
	// Objects of a Put in flight are not listed [VISIBILITY]. List works
	// while Puts and Deletes run under its prefix: it keeps its order and
	// lists every untouched key exactly once [LIST-CONCURRENT]. Optional:
	// without Capabilities.List, ErrUnimplemented [UNIMPLEMENTED].
	List(ctx context.Context, req ListRequest, page func([]ObjectInfo) error) error

	// Delete removes an object and nothing else (a key's neighbours, and
	// keys it is a prefix of, stay). Deleting a missing key succeeds
	// [DELETE]. A key may hold an object and be a prefix of other keys at
	// the same time ("a" and "a/b") [DELETE]. A Delete racing a Put of the
	// same key leaves the Put's complete bytes or no object, and a Put
	// acknowledged after the Delete returned is not undone by it
	// [PUT-DELETE-RACE]. Every object written can be
	// deleted, leaving nothing listed under its prefix [CLEANUP].
	Delete(ctx context.Context, key string) error
}

// Info describes a backend (GetInfo).
type Info struct {
	Name          string
	Version       string
	ContractMajor uint32
	ContractMinor uint32
	Capabilities  Capabilities
	Limits        Limits
}

// Capabilities are the optional features a backend supports. Anything not
// advertised must answer ErrUnimplemented [UNIMPLEMENTED] (the Server
// adapter enforces it). Each field says what the host (core/tier2 and
// the coordinator) uses it for and what it does when it is not
// advertised, as the capabilities table in
// docs/plugin-contract.md#capabilities-the-host-uses does. A host serving
// as the prefix's writer needs IfAbsent, IfMatch (it claims the prefix
// with them, docs/adr-fencing.md) and List (it lists tier 2 before it
// creates a stream); the other three only cost performance or a feature.
type Capabilities struct {
	// RangeGet: cold point reads of a segment held only in tier 2, and
	// describing a segment from its object at recovery. Without it whole
	// objects are still read (hydration), but range reads fail with
	// ErrUnimplemented, so those point reads and descriptions fail.
	RangeGet bool
	// PutFile: segment uploads by path from the staging directory. Without
	// it (or on an Unimplemented answer, for good) the host streams Put.
	PutFile bool
	// GetFile: segment downloads into the warm cache. Without it the host
	// streams Get into the file.
	GetFile bool
	// IfAbsent: idempotent uploads (an existing object with the same size
	// and CRC counts as uploaded, different bytes are data loss, never
	// overwritten). Without it the host Heads first, then Puts
	// unconditionally (racy only against a second writer of the stream,
	// which the one-writer rule excludes), but the writer claim fails, so
	// a writer host refuses to start without it.
	IfAbsent bool
	// IfMatch: downloads and range reads pinned to the etag the manifest
	// recorded or the one seen at open; replacing the writer claim
	// (takeover) and a damaged object (scrub). Without it the etag is
	// compared after the fact, scrub never overwrites, and the writer claim
	// fails, so a writer host refuses to start without it.
	IfMatch bool
	// List: knowing, before a writer creates a stream, that tier 2 does
	// not hold it already; reconciliation at start-up; rebuilding a
	// damaged manifest from a listing; what a replica follows. A host
	// refuses to start without it; core/tier2 used on its own (tools)
	// cannot create streams (WouldBlock(admission)), skips reconciliation
	// with a warning, and a rebuild that needs the listing fails (that
	// stream does not open).
	List bool
}

// Limits bound what a backend accepts. Zero means "no specific limit"
// except where noted.
type Limits struct {
	// MaxChunkSize caps the negotiated chunk size (0: MaxChunkSize).
	MaxChunkSize uint32
	// PreferredChunkSize is what the backend would pick (0: DefaultChunkSize).
	PreferredChunkSize uint32
	MaxObjectSize      uint64
	// MaxConcurrentStreams is how many Put/Get streams the backend serves
	// at once before it starts throttling.
	MaxConcurrentStreams uint32
	// MaxMetadataBytes bounds MetadataSize (0: DefaultMaxMetadataBytes).
	MaxMetadataBytes uint32
}

// ConfigureRequest carries a backend's settings.
type ConfigureRequest struct {
	// Config is the backend's own settings (root, bucket, prefix, endpoint,
	// region, credentials...). Keys the backend does not know are an error.
	Config map[string]string
	// ChunkSize is the host's proposal (0: DefaultChunkSize).
	ChunkSize uint32
	// StagingDir, when set, is the only directory PutFile and GetFile paths
	// may name.
	StagingDir string
}

// ConfigureResult is the outcome of Configure.
type ConfigureResult struct {
	// ChunkSize is the chosen chunk size, within [MinChunkSize, MaxChunkSize].
	ChunkSize uint32
}

// ProbeRequest asks for a readiness check.
type ProbeRequest struct {
	// WriteKey, when set, is written, read back and deleted.
	WriteKey string
}

// PutRequest describes an object to store.
type PutRequest struct {
	Key      string
	Size     uint64
	CRC64    uint64
	Metadata map[string]string
	// IfAbsent makes the write fail with ErrAlreadyExists if the key exists.
	IfAbsent bool
	// IfMatch makes the write fail with ErrPrecondition unless the object
	// exists with this etag.
	IfMatch string
}

// GetRequest names a byte range of an object.
type GetRequest struct {
	Key    string
	Offset uint64
	// Length 0 reads to the end.
	Length  uint64
	IfMatch string
}

// ObjectInfo describes a stored object. Put, Head and Get fill every
// field; List entries carry at least Key, Size and ETag [LIST-INFO].
type ObjectInfo struct {
	Key  string
	Size uint64
	// ETag is non-empty and changes whenever the object is rewritten, even
	// with identical bytes [OVERWRITE], so IfMatch is a compare-and-swap.
	ETag string
	// CRC64 is the object's CRC-64/NVME when HasCRC64; Put acknowledgements
	// and Head carry it [PUT-ACK] [HEAD].
	CRC64    uint64
	HasCRC64 bool
	Metadata map[string]string
	// ModTime is when this version became visible, on the backend's clock
	// (an object store reports its own): no earlier than the last byte of
	// its Put arrived, never the moment the Put started, no later than its
	// commit, and never older than the ModTime of the version it replaced.
	// Of two overlapping Puts, the one visible last reports the later time. Head must set it [HEAD];
	// the host records it as a segment's timestamp when it rebuilds a
	// manifest from tier 2 (restore, replicas).
	ModTime time.Time
}

// ObjectRange is the result of Get/GetFile: the whole object's description
// and the byte range served.
type ObjectRange struct {
	Info   ObjectInfo
	Offset uint64
	Length uint64
}

// ListRequest selects objects for List.
type ListRequest struct {
	Prefix     string
	StartAfter string
	PageSize   uint32
}

// DefaultListPageSize is the page size used when a ListRequest has none.
const DefaultListPageSize = 1000

// ResolveRange applies the Get range rules to an object of the given size:
// Length 0 means to the end, a range past the end is clipped, and an offset
// at or past the end of a non-empty object is ErrOutOfRange.
func ResolveRange(size, offset, length uint64) (uint64, error) {
	if offset > size || offset == size && size > 0 {
		return 0, &Error{Code: CodeOutOfRange, Message: "offset " + u64s(offset) + " is past the end of a " + u64s(size) + "-byte object"}
	}
	rest := size - offset
	if length == 0 || length > rest {
		return rest, nil
	}
	return length, nil
}
