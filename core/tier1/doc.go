// Package tier1 is AOF2's warm tier: a local cache of sealed segments
// compressed into the zstd seekable format.
//
// # Why
//
// Tier 0 holds segments as fixed-size memory-mapped files; keeping every
// sealed segment there costs its full capacity in disk. Tier 2 (an object
// store) is cheap but slow and billed per request. Tier 1 sits between:
// each sealed segment is compressed once (log records typically shrink
// 3–4×), the artifact is what gets uploaded to tier 2, and it can be read
// two ways:
//
//   - hydration rebuilds the exact tier-0 file (byte for byte, verified
//     against the footer's segment_crc64) when a segment goes back into
//     tier 0 for a sequential scan, and
//   - frame-level random access reads any byte range of the original
//     segment by decompressing only the frames it spans, so a point read
//     of one record in a cold 64 MiB segment fetches the seek table and one
//     or two frames (about 70 KiB with the default 256 KiB frames), locally
//     or through range reads of the tier-2 object (OpenReaderAt takes any
//     io.ReaderAt).
//
// # Artifact format
//
// An artifact is the whole segment file, compressed verbatim in frames of
// FrameSize decompressed bytes, followed by the seekable format's seek
// table (github.com/facebook/zstd contrib/seekable_format; written with
// github.com/SaveTheRbtz/zstd-seekable-format-go on klauspost/compress):
//
//	+---------+---------+-- ... --+-----------+------------------------------------------+
//	| frame 0 | frame 1 |         | frame n-1 | seek table (skippable frame, magic        |
//	| header, | records |         | records,  |   0x184D2A5E): n × {compressed u32,       |
//	| records |         |         | footer    |   decompressed u32, xxh64_lo32 u32},      |
//	+---------+---------+-- ... --+-----------+   n u32, descriptor u8 (bit 7: checksums),|
//	                                          |   magic 0x8F92EAB1                        |
//	                                          +------------------------------------------+
//
// Every frame carries zstd's content checksum and the seek table carries a
// second one per frame; both are verified before a byte is returned. The
// decompressed size is the segment capacity, the segment header is in
// frame 0 and the footer in frame n-1, so an artifact is self-describing:
// Open checks it against what the manifest expects by reading the seek
// table and those two frames only.
//
// # Safety rules
//
//   - Artifacts and hydrated segments are written crash-safely: <name>.tmp,
//     fsync, rename, directory fsync. A crash leaves either nothing or the
//     complete file; Open deletes leftover .tmp files.
//   - Compression verifies the source as it reads it (segment_crc64 of
//     [0, durable_bytes) must match the footer), so a damaged tier-0 file
//     never becomes an artifact (ErrSourceCorrupt).
//   - Hydration recomputes segment_crc64 over the rebuilt bytes and compares
//     it with the footer and with the caller's expectation before the
//     rename; a mismatch is a *ChecksumMismatchError and no file appears.
//   - With a tier 2 configured an artifact is evicted only after
//     MarkUploaded; pinned or open artifacts and those younger than
//     MinResidency are never evicted. Eviction only deletes files and
//     returns what it deleted for the caller to journal.
//   - Open never deletes an artifact it cannot verify or does not know: it
//     reports it (Report.Mismatched, Report.Unknown, Report.Missing).
//
// # Concurrency
//
// Compression and hydration run on two bounded worker pools. Submit*
// calls never block (ErrBusy when the queue is full), so tier 0 never waits
// on tier 1; Compress and Hydrate wait for their result. Jobs honour their
// context and Close cancels running jobs, rejects queued ones with
// ErrClosed and waits for every worker goroutine.
package tier1
