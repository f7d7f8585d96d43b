package pluginapi

import (
	"context"
	"io"
	"time"
)

// Backend is what a tier-2 backend implements, and what the host calls.
// The host gets a Backend whose methods are RPCs to a plugin process; a
// plugin hands its own Backend to Serve. Every method must honour ctx:
// when it is cancelled the call returns promptly with ctx.Err() and leaves
// no partial object visible.
//
// Errors must match the contract's sentinels (return an *Error, or wrap a
// sentinel with %w) so they map onto the error table in docs/plugin-contract.md#errors. The
// adapters in this package validate keys, metadata, chunk framing, staging
// paths and checksums before a call reaches the backend, but a Backend used
// in-process must not rely on that: [CheckPut] and [ValidateKey] are cheap.
type Backend interface {
	// Info describes the backend. It must work before Configure and must
	// not change after it.
	Info(ctx context.Context) (Info, error)

	// Configure applies settings and picks the chunk size. Unknown or bad
	// settings fail with ErrInvalidConfig naming the setting; secrets in
	// req.Config must never be echoed in errors or logs. A host that
	// re-attaches may call Configure again; the new settings replace the old.
	Configure(ctx context.Context, req ConfigureRequest) (ConfigureResult, error)

	// Probe reports whether the backend is usable now (credentials valid,
	// bucket reachable). With req.WriteKey set it also writes, reads back
	// and deletes that key.
	Probe(ctx context.Context, req ProbeRequest) error

	// Put stores the object read from body. body yields exactly req.Size
	// bytes whose CRC-64/NVME is req.CRC64, then io.EOF; a body that breaks
	// that promise returns an error instead of io.EOF, and the backend must
	// then abort. The object becomes visible only after body returned
	// io.EOF and the write is durable; a failed or cancelled Put leaves the
	// previous state (no object, or the old one) untouched.
	// Preconditions: IfAbsent fails with ErrAlreadyExists if the key exists;
	// IfMatch fails with ErrPrecondition unless the current etag equals it
	// (a missing object fails too). Check-and-write is atomic.
	Put(ctx context.Context, req PutRequest, body io.Reader) (ObjectInfo, error)

	// PutFile is Put with the bytes read from the local file at path. The
	// backend verifies req.Size and req.CRC64 against what it read before
	// the object becomes visible (ErrChecksum otherwise). Optional:
	// backends without Capabilities.PutFile return ErrUnimplemented.
	PutFile(ctx context.Context, req PutRequest, path string) (ObjectInfo, error)

	// Get opens a range of an object. The result describes the whole object
	// and the range actually served; Length 0 in req reads to the end and a
	// range running past the end is clipped to it. An offset at or beyond
	// the end of a non-empty object fails with ErrOutOfRange. A missing key
	// fails with ErrNotFound, an IfMatch that differs with ErrPrecondition.
	// The caller must Close the reader. Backends without
	// Capabilities.RangeGet must still serve Offset 0, Length 0 and return
	// ErrUnimplemented for any other range.
	Get(ctx context.Context, req GetRequest) (ObjectRange, io.ReadCloser, error)

	// GetFile writes the range Get would return into a new local file at
	// path (created, or truncated if it exists). On error the file may be
	// partial; the caller removes it. Optional, as PutFile.
	GetFile(ctx context.Context, req GetRequest, path string) (ObjectRange, error)

	// Head describes an object; a missing key fails with ErrNotFound.
	Head(ctx context.Context, key string) (ObjectInfo, error)

	// List calls page with successive pages of the objects whose key starts
	// with req.Prefix and sorts (byte-wise) after req.StartAfter, in
	// ascending key order, at most req.PageSize per page (0: backend
	// default). A non-nil error from page stops the listing and List
	// returns it. Optional: without Capabilities.List, ErrUnimplemented.
	List(ctx context.Context, req ListRequest, page func([]ObjectInfo) error) error

	// Delete removes an object. Deleting a missing key succeeds.
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
// advertised must answer ErrUnimplemented.
type Capabilities struct {
	RangeGet bool
	PutFile  bool
	GetFile  bool
	IfAbsent bool
	IfMatch  bool
	List     bool
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

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key  string
	Size uint64
	// ETag changes whenever the object is rewritten.
	ETag string
	// CRC64 is the object's CRC-64/NVME when HasCRC64.
	CRC64    uint64
	HasCRC64 bool
	Metadata map[string]string
	ModTime  time.Time
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
