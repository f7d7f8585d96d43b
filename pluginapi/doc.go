// Package pluginapi is the versioned contract between the AOF2 host and its
// tier-2 backend plugins: the package a backend author imports.
//
// A backend author implements [Backend] (each method's doc states what it
// must return) and calls [Main] or [Serve] from the plugin's main. The
// contract's reference, with the error table, is docs/plugin-contract.md.
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
// [ErrUnimplemented] for optional features it lacks.
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
