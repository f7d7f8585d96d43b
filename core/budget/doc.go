// Package budget is the byte budget of AOF2's hot tier (tier 0): which
// segment files may live on local disk, which should leave, and who gets
// the space next.
//
// # Why
//
// Tier 0 holds segments as fixed-capacity, preallocated, memory-mapped
// files, so its cost is the capacity of every file present, not the bytes
// written. Disk is finite and shared by every stream of a host, so
// tier0.max_bytes bounds the total (with an optional cap per stream, so one
// busy stream cannot take the disk from the others). Three facts shape the
// rules:
//
//   - An active segment is where a writer is appending. It is never evicted;
//     it leaves the accounting only after it is sealed. Segments found on
//     disk at start-up are registered unconditionally (they exist), even if
//     that puts tier 0 over budget.
//   - A sealed segment is a cache entry. Its local copy may go only when
//     another tier holds the data: with PolicyTier1 once tier 1 (or tier 2)
//     has it, with PolicyTier2 only once tier 2 has it, so that while the
//     object store is down nothing that exists only locally is ever
//     deleted (docs/tiering.md#tier-0-budget). A pinned segment (an open reader) never goes.
//     Among the eligible ones the least recently used goes first.
//   - When nothing more can go, a new segment cannot be activated: the
//     writer gets WouldBlock(Admission) (types.ErrWouldBlock) instead of
//     filling the disk, and hydrations of cold segments wait in a
//     priority queue that is served as space frees.
//
// # What it does and does not do
//
// A Budget is pure accounting, driven by the coordinator. It never deletes
// or creates a file and runs no goroutines. An admission that needs room
// returns the chosen victims in Grant.Evict; their bytes stop counting at
// once (they are "evicting"), the caller deletes them before creating the
// new file (after the manifest says that is safe), then reports each with
// Removed, or with Restore if the delete was abandoned.
//
//	Admit/TryAdmit ──► active ──Seal──► sealed ◄──Touch/Pin/Unpin/Mark*──
//	   (or hydrated) ─────────────────►   │
//	                                      │ chosen as a victim (LRU, eligible)
//	                                      ▼
//	                                   evicting ──Removed──► gone
//	                                      └──────Restore───► sealed
//
// # Admission and the activation queue
//
// TryAdmit never waits: it admits, or admits with victims, or returns
// *types.WouldBlock{Kind: types.Admission} whose Cause wraps
// ErrBudgetExhausted. Admit waits on a channel (never polls) in a queue
// with three priorities (foreground read or rollover > scan read-ahead >
// background), FIFO within a priority; the queue is drained under the lock
// by every call that can free space or make a segment evictable (Removed,
// Seal, Unpin, MarkInTier1/2, Restore, raised limits, a cancelled waiter).
// A waiter blocked on the global budget holds back everything at its
// priority and below, so large requests are not starved by small ones; one
// blocked only on its own stream's cap lets other streams pass. TryAdmit
// respects the queue: it does not jump ahead of a waiting activation of the
// same or higher priority. Cancelling Admit's context removes the waiter
// (or undoes an admission that raced with the cancellation).
//
// # Cost
//
// Only eligible segments sit in the LRU heaps (one global, one per
// stream), so choosing k victims costs O(k log n) however many segments
// are active, pinned or not yet uploaded, and Touch is O(log n).
package budget
