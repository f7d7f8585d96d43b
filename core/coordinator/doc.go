// Package coordinator moves sealed segments between the tiers of AOF2 and
// back: it compresses each sealed tier-0 segment into the warm cache
// (core/tier1), uploads the artifact to tier 2 (core/tier2), evicts tier-0
// files when the tier-0 budget (core/budget) needs room, and hydrates evicted
// segments when a reader needs them. It implements core.Tiering: the
// engine never imports the tiers, the coordinator drives them.
//
// # Ordering (docs/tiering.md#crash-consistency-rules)
//
// Every transition is recorded in the stream's manifest log: *Started is
// appended when a job starts, *Done or *Failed committed when it ends.
//
//   - A segment is marked InTier1 (evictable under PolicyTier1) only after
//     CompressionDone is durable, and InTier2 only after the upload was
//     verified and UploadDone is durable. The artifact's presence in the
//     warm cache is not enough: an artifact made durable whose record was
//     not (a crash, a failed commit) is verified and recorded first, by
//     the compress job or by Start.
//   - A tier-0 file is deleted only when the budget chose it, which it does
//     only for segments safe per the policy; LocalEvicted is committed after
//     the file is gone. A crash in between leaves a segment the manifest
//     still calls resident but whose file is missing; Start repairs that by
//     committing the LocalEvicted it lacks.
//   - A warm artifact not yet in tier 2 is never evicted when tier 2 is
//     configured (tier1.Config.Tier2).
//   - While tier 2 is down nothing only in tier 0/1 is deleted: uploads fail
//     and are retried, the budget has no safe victims under PolicyTier2, and
//     writers get WouldBlock(Admission) once tier 0 is full.
//   - With a tier 2, a segment id is activated only once tier 2 holds a
//     reservation through it (reserve.go): AdmitSegment refuses it with
//     WouldBlock(Admission) (ErrReservationPending) until then.
//
// # Work scheduling
//
// Seals are hints (core.Tiering.SegmentSealed); the source of truth is the manifest
// index and the stream catalog. A periodic scan re-derives pending work
// (sealed but not compressed, compressed but not uploaded, over budget), so
// a lost hint, a failed job or a restart only delays work. Jobs run on a
// bounded pool; each (stream, segment, kind) runs at most once at a time.
package coordinator
