// Package manifest is the per-stream manifest log of AOF2: a binary,
// checksummed, append-only record of every tier transition of every
// segment (opened, sealed, compressed, uploaded, hydrated, evicted,
// deleted), folded into a ManifestIndex that says where each segment's
// bytes live. A restart, or another machine holding the uploaded chunks,
// rebuilds residency by replaying it.
//
// # Why a log
//
// Tier transitions are small, frequent and must be durable before they are
// acted on (a seal is acknowledged only once its SealSegment record is
// committed; a local copy is deleted only after the record of its upload is
// durable). Rewriting a JSON document per transition costs a full file
// rewrite and four I/O operations each time, and a crash between the
// transition and the rewrite loses it. A log appends a few dozen bytes and
// commits with two fdatasyncs; snapshots bound replay time; sealed chunks
// ship to tier 2 so the manifest survives the loss of the disk.
//
// # On disk
//
//	<data_dir>/streams/<stream_id>/         the stream directory (Open's dir)
//	├── manifest/
//	│   ├── 00000000000000000007.mlog        sealed chunks (read-only)
//	│   ├── 00000000000000000008.mlog        the active chunk, once committed
//	│   ├── 00000000000000000009.mlog.tmp    a chunk before its first commit
//	│   ├── snapshot_00000000000000000003.bin
//	│   └── snapshot_00000000000000000004.bin
//	└── warm/manifest.json                  tier-1 JSON view (flag off only)
//
// The chunk header and record frame layouts are drawn in format.go, the 16
// record payloads in payload.go, the snapshot layout in snapshot.go. All
// integers are little-endian, all checksums CRC-64/NVME.
//
// # Chunk lifecycle
//
//	create <i>.mlog.tmp  ──first commit──▶  <i>.mlog  ──seal──▶  <i>.mlog (sealed)
//	(fallocate capacity,                    (header rewritten     (truncated to
//	 empty header)                           by each commit)       committed_len)
//	                                                               │ uploaded flag,
//	                              retention removes it ◀───────────┘ newer snapshots
//
// A commit writes the new record frames past committed_len, fdatasyncs,
// then rewrites the header (tail_offset, committed_len, chunk_crc64) and
// fdatasyncs again; the first commit of a chunk also renames it and fsyncs
// the directory. A crash at any point leaves the old header or the new one
// (it lies in the first sector), so replay sees either none or all of a
// commit's records, and trims the rest. A chunk rotates when a record does
// not fit, or when the rotation timer (250 ms) finds records appended and
// not yet committed: it then commits them and seals the chunk. The timer
// runs only while such records wait, on a goroutine that exits when idle.
//
// # Using it (the tier-0 engine)
//
//	log, err := manifest.Open(ctx, vfs.OS, streamDir, streamID, manifest.Options{
//		Registerer:  reg,          // never the global registry implicitly
//		Logger:      logger,
//		GroundTruth: engine,       // Segments(ctx) from segment headers/footers
//		OnChunkSealed: uploader.Enqueue,
//	})
//	st := log.Replay()             // chunks, trimmed bytes, corruption, NeedsRepair
//	idx := log.Index()             // copy of the folded ManifestIndex
//
//	// Rollover: the seal is acknowledged only after this returns nil.
//	err = log.AppendCommit(ctx, manifest.SealSegment{
//		Header:       manifest.Header{SegmentID: id, LogicalOffset: end},
//		DurableBytes: n, SegmentCRC64: manifest.Hex64(crc), ExtID: ext,
//		CoordinatorWatermark: wm, FlushFailure: ff,
//	}, manifest.SegmentOpened{Header: manifest.Header{SegmentID: id + 1, LogicalOffset: end}, BaseOffset: end})
//
//	log.Append(rec)                // no I/O; durable after the next Commit
//	log.Commit(ctx)                // group commit; safe for concurrent callers
//	log.Snapshot(ctx)              // also automatic every SnapshotEveryBytes
//	log.MarkUploaded(ctx, chunk)   // after a verified upload; applies retention
//	log.Close()
//
// AppendCommit's records are atomic: all or none survive a crash. Append
// and Commit never block on anything but the disk; Commit honours its
// context while it waits for another caller's commit.
//
// # Failures
//
// Errors wrap stable sentinels (ErrCorrupt, ErrInvalidConfig,
// ErrEmptyRecord, ErrInvalidRecord, ErrRecordTooLarge, ErrClosed,
// ErrFailed, ErrNotFound) with %w and context; bad options are a
// *ConfigError naming the key. A failed write or fsync on the commit path
// is fail-stop: the Log answers every later call with an error wrapping
// ErrFailed and the cause, and reopening recovers from what is on disk
// (never retry an fsync on the same file and carry on).
//
// Replay never drops committed bytes silently. A CRC or decode failure
// inside committed bytes is counted (aof_manifest_replay_corruption_events),
// stops that chunk after its last verified record, marks the stream
// NeedsRepair and, with Options.GroundTruth, rebuilds residency from
// ground truth and writes a snapshot past the damage (Log.Repair). Damaged
// files are left as found, for the operator and the inspector.
//
// # Metrics and events
//
// Replay publishes aof_manifest_replay_chunk_lag_seconds,
// aof_manifest_replay_journal_lag_bytes, aof_manifest_replay_chunk_count
// (gauges: the latest replay) and aof_manifest_replay_corruption_events (a
// counter), labelled stream_id, and logs each as an hclog event
// "manifest_metric" with fields metric_name, stream_id and value, so the
// query metric_name:"aof_manifest_replay_*" stream_id:42 finds them. The
// JSON-view parity check publishes aof_manifest_shadow_divergence.
//
// # Log-only bootstrap
//
// tier1_manifest_log_only (Options.LogOnly, or AOF2_MANIFEST_LOG_ONLY=1
// through Options.ApplyEnv): off, the tier-1 JSON view warm/manifest.json
// is persisted atomically behind the log, by its own writer, after the
// commits that change it (never inside one), names the log position it
// shows and is checked for parity at boot against the log's state there;
// on, no JSON is read or written. The log is authoritative
// in both modes. TestManifestCrashMidCommit is the test an operator reruns
// before flipping the flag and after reverting it.
//
// # Tooling
//
// Inspector (the library behind `aof2-host manifest inspect|verify`)
// reports chunk headers, decoded records, snapshots and the folded state as
// JSON-friendly structs; Verify recomputes every CRC and checks the
// structural, snapshot, retention and (optionally) tier-2 invariants.
package manifest
