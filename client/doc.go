// Package client is the Go client of an aof2-host's gRPC API
// (aof2.v1.Log and aof2.v1.Admin). It depends on the engine's identifier
// and error types (core/types) only, not on the engine, so applications
// that talk to a host do not link a storage engine.
//
// Errors come back as the engine's sentinels: errors.Is(err,
// types.ErrUnknownStream) (the same value as core.ErrUnknownStream) and
// errors.As(err, &wb) with a *WouldBlockError work as they do in process.
// Appends that the host refuses with WouldBlock are retried after the
// delay it asks for (WithAppendRetry turns that off); an append that failed
// after appending part of its batch is never retried, and its *Error says
// how much went in.
//
// One Client is meant to be shared: concurrent appends to a stream made
// while another is in flight are coalesced into the next Append call (each
// caller still gets its own ids once its records are durable, and its own
// error), which on a small host serves several times the appends a second
// of one connection per writer (docs/performance.md in the repository).
// WithAppendCoalescing(false) sends each append as a call of its own.
//
// Dial connects in plaintext to a loopback address and over TLS (system
// roots, or WithTLS) to anything else, unless WithInsecure says otherwise.
package client
