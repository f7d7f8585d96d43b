// Package pluginapi is the versioned contract between the AOF2 host and its
// tier-2 backend plugins: the package a backend author imports.
//
// A backend author implements [Backend] (each method's doc states what it
// must return, and names in brackets the conformance rule that checks it)
// and calls [Main] or [Serve] from the plugin's main. The contract's
// reference, with the error table, is docs/plugin-contract.md; the path
// from an empty directory to a host serving with a new plugin
// (`aof2-host plugins new NAME` writes a skeleton module) is
// docs/plugin-authors.md.
//
// # The contract in brief
//
// Errors: return an [*Error] with a [Code], or wrap the matching sentinel
// with %w. The codes, their gRPC status and ErrorInfo reason, and whether
// the host retries them:
//
//	object missing              CodeNotFound        NOT_FOUND            ErrNotFound         no
//	if_absent violated          CodeAlreadyExists   ALREADY_EXISTS       ErrAlreadyExists    no
//	if_match failed             CodePrecondition    FAILED_PRECONDITION  ErrPrecondition     no
//	throttled (set RetryAfter)  CodeThrottled       RESOURCE_EXHAUSTED   ErrThrottled        yes, after the retry-after
//	bad/expired credentials     CodeAuth            UNAUTHENTICATED      ErrAuth             no
//	access denied               CodePermission      PERMISSION_DENIED    ErrPermission       no
//	backend 5xx, network        CodeUnavailable     UNAVAILABLE          ErrUnavailable      yes
//	bytes != size or CRC        CodeChecksum        DATA_LOSS            ErrChecksum         once more
//	range past the end          CodeOutOfRange      OUT_OF_RANGE         ErrOutOfRange       no
//	invalid key or prefix       CodeInvalidKey      INVALID_ARGUMENT     ErrInvalidKey       no
//	invalid settings            CodeInvalidConfig   INVALID_ARGUMENT     ErrInvalidConfig    no
//	any other bad request       CodeInvalidArgument INVALID_ARGUMENT     ErrInvalidArgument  no
//	not supported/advertised    CodeUnimplemented   UNIMPLEMENTED        ErrUnimplemented    no (host falls back)
//	anything else               CodeUnknown         INTERNAL             ErrInternal         no
//
// Never use CodeUnavailable for throttling, and name the key (Error.Key)
// in every error about an object.
//
// Keys ([ValidateKey]): UTF-8, relative, '/'-separated, no empty, "." or
// ".." segment, no control character or backslash, at most [MaxKeyLength]
// bytes. A key that fails it, "x/" for one, can never name an object, so
// every method answers [ErrInvalidKey] for it, not [ErrNotFound]: a caller
// passing a prefix where a key belongs has a bug that must surface, and
// "x/" would otherwise mean a folder marker on one store, a directory on
// another and nothing on a third.
//
// Capabilities: optional for the contract; each field of [Capabilities]
// says what the host falls back to without it. A host serving as a
// prefix's writer needs IfAbsent and IfMatch to claim the prefix, and List
// to create streams.
//
// Versions: see [ContractMajor] and [ContractMinor] below.
//
// # What lives here, and what does not
//
// Here: [Backend] and its request/response types, the error codes and
// sentinels with their gRPC mapping ([ToStatus] / [FromStatus]), key and
// metadata validation, the CRC-64/NVME helpers, [Serve] / [Main] and the
// plugin-side parent watch, and the two wire adapters: [Server] (serves a
// Backend) and [Client] (a Backend whose methods are RPCs). Both adapters
// are here because they are the two halves of one wire protocol with the
// same checks, and because the conformance suite drives a plugin through
// [Client] without any of the host's machinery.
//
// Not here: launching, supervising and attaching to plugin processes, and
// their Prometheus metrics, which live in pluginapi/host. A plugin binary
// therefore links neither the supervisor nor the Prometheus client
// (TestPluginBinariesLinkNoHostMachinery holds every plugin command to it).
//
// # Why a plain gRPC service
//
// hashicorp/go-plugin only starts the process, checks the magic cookie and
// negotiates the contract major version; after that the contract is the
// aof2.backend.v1 gRPC service in proto/. A future host could dial a backend
// served remotely, or re-attach to one started by hand, without changes.
//
// # What lives here once
//
// Input validation (keys, metadata, chunk framing, staging paths), the
// CRC-64/NVME end-to-end check of every Put and full-object Get, and the
// error mapping are done by the adapters in this package, so each backend
// stays thin and every backend reports the same errors the same way.
//
// # Retries
//
// Nothing in this package retries: not [Client], not [Server]. A backend
// should not retry either (the cloud plugins configure their SDKs for a
// single attempt); it reports what happened with the right code, and a
// throttled answer carries its retry-after. The host's core/tier2 owns
// retries, backoff and the circuit breaker (docs/adr-tier2.md, "Retries
// and the breaker, end to end").
//
// # Versioning
//
// [ContractMajor] is both the go-plugin VersionedPlugins key and the proto
// package suffix. Minor changes are additive: a backend advertises
// [ContractMinor], capabilities and limits in [Info], and answers
// [ErrUnimplemented] for optional features it lacks. A minor may add RPCs,
// request and response fields, capability flags and limits, each optional
// with a host-side fallback; it never changes what an existing field,
// code or rule means. So a plugin built against an older minor keeps
// working with a newer host (the host sees the features it lacks as not
// advertised) and a newer plugin with an older host (the host never asks
// for what it does not know); docs/plugin-contract.md#versioning.
package pluginapi

const (
	// ContractMajor is the major version of the backend contract. A breaking
	// change is a new major with a new proto package.
	ContractMajor = 1
	// ContractMinor is the newest additive revision this package implements.
	ContractMinor = 0
	// ErrorDomain is the google.rpc.ErrorInfo domain of every contract error.
	ErrorDomain = "aof2.backend.v1"
)
