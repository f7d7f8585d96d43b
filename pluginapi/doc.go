// Package pluginapi is the versioned contract between the AOF2 host and its
// tier-2 backend plugins, and everything both sides share to speak it.
//
// A backend author implements [Backend] and calls [Serve] from main; the
// host launches the binary with [Launch] (or supervises it with
// [NewSupervisor]) and gets a [Backend] back whose methods are remote calls.
// Because both sides see the same Go interface, the conformance suite,
// core/tier2 and tests can use an in-process backend and a plugin process
// interchangeably.
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
// error mapping ([ToStatus] / [FromStatus]) are done by the adapters in this
// package, so each backend stays thin and every backend reports the same
// errors the same way.
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
