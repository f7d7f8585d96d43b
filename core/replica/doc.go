// Package replica makes a node a read replica of a tier-2 prefix's
// writer (docs/tiering.md#read-replicas): it follows every stream from
// tier 2 alone, so any number of replicas can serve reads of one
// prefix without the writer knowing about them, and a replica can be
// promoted into the writer after a takeover.
//
// A replica's store is opened with core.Config.Follower: it never
// prepares a segment or takes an id, and refuses appends. The Follower
// polls the next key of every stream — the segment object after the
// newest one it holds (a HEAD, no LIST) — and adds each segment that
// appears as a cold segment (Stream.Follow: its header and footer, read
// by ranged reads from the artifact's end; no segment bytes). Reads then
// hydrate or read by range from tier 2 like any cold read, under the
// replica's own budgets. The prefix is listed at start and every
// ListInterval: to find new streams, to catch up on many segments at
// once, and to drop the segments the writer's retention deleted.
//
// What a replica serves is exactly what the writer uploaded, byte for
// byte with the same RecordIDs: a segment object is the sealed segment
// (verified against its footer's checksum when it is hydrated), and a
// segment that does not continue the stream exactly (id, first record,
// first offset) is refused, never served. Its lag behind the writer is
// the writer's upload lag (bounded by segment.max_age) plus the poll
// interval; aof_replica_lag_seconds and aof_replica_lag_records say how
// far behind tier 2 it is.
package replica
