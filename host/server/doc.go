// Package server is the host's client API: the gRPC services aof2.v1.Log
// and aof2.v1.Admin (api/proto/aof2/v1) and a plain HTTP API for the same
// basics, so that both curl and the Go client (package client) reach one
// store. The host supplies a Node; the server owns nothing but its
// listeners' work.
//
// # Durability and backpressure
//
// An append is acknowledged once it is durable unless the caller opts
// out: the records are appended, then one Flush to the last id waits for a
// sync that concurrent callers share (group commit). A durable append
// waits out the engine's backpressure (WouldBlock) for up to
// Options.MaxBlock within the request's deadline and only then reports it;
// an opted-out append reports it at once, before appending anything. Once
// an append has appended a record it waits out backpressure like a durable
// one, since a client retry of half a batch would duplicate its prefix;
// when an append fails after appending, the error says how many records
// went in.
//
// # Read memory
//
// A read copies records out of their segments, and a response waits in
// memory until the client takes it; without bounds, a few clients asking
// for many large records (or reading slowly) grow the process without
// limit. So each response is bounded — Options.ReadDefaultBytes of payload
// when the request does not say, and never more than Options.ReadMaxBytes
// however much it asks (a larger max_bytes is clamped, not refused: the
// response's next position continues the read) — and the bytes of every
// response in flight, from the copy until the transport has written them
// to the connection, come out of one server-wide budget,
// Options.ReadBudgetBytes (readbudget.go). A request waits for room for its
// first record, within its own context, holding nothing, so a client that
// gives up leaves and a slow client slows only itself; further records go
// in only while there is room at once, so a busy server answers with
// shorter responses rather than more memory. A response always carries at
// least one record when one is available: a record larger than the
// default, the maximum or the whole budget comes alone (and takes the
// whole budget). HTTP answers are encoded and written in chunks, giving
// bytes back as they go; gRPC responses are encoded by a codec whose
// buffer gives the response's bytes back when the transport releases it,
// or when the connection ends.
//
// # Errors
//
// Both transports classify errors with one table (errors.go): each engine
// sentinel gets one gRPC code, one HTTP status and one ErrorReason, and
// WouldBlock carries its kind and a retry delay (google.rpc.RetryInfo, or
// Retry-After with a JSON body). Client-visible messages keep the engine's
// wording but not the server's directories.
//
// # Shutdown
//
// Shutdown stops accepting, ends Tail streams and health watches (they
// would otherwise never finish), and lets other in-flight requests finish
// until its context is done.
package server
