// Package core is the AOF2 engine: a Store holds streams of records, each
// with one writer, written into preallocated segment files (tier 0) and
// read back through read-only memory mappings. How records reach the file
// (pwrite by default, or stores into a writable mapping) and how files are
// prepared were chosen by measurement: docs/adr-write-path.md.
//
// # Writing
//
// Stream.Append copies a record into the active segment and returns its
// RecordID without waiting for the disk. Durability is a separate step:
// Stream.Flush(ctx, id) returns once a sync covering the record finished,
// and Stream.AppendDurable does both. Concurrent waiters share one sync
// (group commit). The SyncPolicy decides what happens without an explicit
// Flush. Only records whose Flush (or AppendDurable) returned nil are
// acknowledged; recovery never loses, duplicates or reorders them.
//
// Backpressure is an error value: the non-blocking calls return an error
// matching ErrWouldBlock that carries a Kind (Admission, Rollover, Flush,
// Tail); the context-taking calls wait for the matching event instead.
//
// # Reading
//
// A Reader starts at a RecordID, an ordinal or the beginning and yields
// records with payload slices that alias the mapped segment (valid until the
// next call). A Tailer yields only durable records and can block for more.
//
// # Manifest
//
// Each stream keeps a manifest log (core/manifest) in its directory: every
// segment activation is recorded, and a seal is acknowledged only after its
// SealSegment record is committed. Opening a stream replays the log and
// brings it up to date with the segment files (a crash can fall between a
// seal and its record); a damaged log is rebuilt from the segments.
//
// # Failure model
//
// A failed sync stops the stream (fail-stop, ErrStreamFailed): data the
// kernel may have dropped is never acknowledged after the fact. Reopening
// the store recovers from what is on disk. A full disk is backpressure:
// writers get WouldBlock(Admission) wrapping ErrNoSpace until space returns.
// Corruption is reported as ErrCorrupt with the file and offset, never
// skipped.
package core
