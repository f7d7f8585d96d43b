// Package tier2 is the portable remote store over a pluginapi.Backend:
// the one place where AOF2 decides how segments and manifest objects are
// named, checked, retried and counted in tier 2, so that every backend
// plugin (fs, s3, gcs, azure, third parties') stays a thin translation
// of the contract.
//
// # Why a layer above the contract
//
// A backend may be a plugin process that crashes, a cloud service that
// throttles, or a buggy third-party implementation that acknowledges a
// write it lost. The coordinator must nevertheless never record an
// object as uploaded unless it is really there with the right bytes, and
// never serve bytes that are not the ones stored. Store enforces that
// once, for every backend:
//
//   - Keys follow docs/formats.md#tier-2-keys-and-object-metadata under an optional prefix (Layout), and
//     Layout.Parse maps listed keys back to identities; keys it does not
//     know are reported (Listing.Unknown), never deleted.
//   - Every upload carries the object's CRC-64/NVME and metadata (kind,
//     stream, segment / chunk / snapshot id, record_count, base_record,
//     crc64, size). Uploads are idempotent: an if_absent Put, then a
//     Head proving the object is there with that checksum (a Put
//     acknowledged but lost is retried). A key that already holds the
//     same bytes counts as done; different bytes are a loud
//     DataLossError, never an overwrite.
//   - Every download is verified against the stored checksum (and what
//     the caller expects, e.g. the manifest's etag); a mismatch is a
//     ChecksumError after one re-fetch, and no unverified byte is
//     returned or left on disk. Bulk bytes go through PutFile/GetFile
//     when the backend advertises them, so they never cross the plugin
//     connection.
//   - Cold reads use RangeReader, an io.ReaderAt over ranged Gets pinned
//     to one object version, which counts the bytes it fetched.
//   - Failures are classified once: throttling (honouring retry-after),
//     unavailability, plugin crashes and attempt timeouts are retried
//     with exponential backoff and full jitter, here and nowhere else
//     (the plugins' SDKs try once and the supervisor never re-issues a
//     call; docs/adr-tier2.md, "Retries and the breaker, end to end");
//     a circuit breaker (closed → open → half-open) stops hammering a
//     failing backend and its state (Health, HealthChanged) tells the
//     coordinator that tier 2 is down, so local copies stay and writers
//     eventually see WouldBlock(Admission); ErrBreakerOpen also matches
//     the plugin supervisor's open breaker; a semaphore bounds the
//     requests in flight; every call takes a context and stops promptly
//     when it ends.
//   - Prometheus metrics (aof_tier2_*) and the documented hclog events
//     (tier2_upload_success|failed, tier2_fetch_success|failed,
//     tier2_delete_success|failed) come from here; the *_failed events
//     are rate-limited (first line per reason, summaries with counts,
//     tier2_*_recovered; docs/adr-host.md, "Logs while something stays
//     broken").
//
// # Use
//
//	st, err := tier2.New(backend, tier2.Config{Prefix: "prod", Registerer: reg, Logger: log})
//	up, err := st.UploadSegment(ctx, stream, segment, "/staging/0001.seg.zst",
//		tier2.SegmentInfo{RecordCount: n, BaseRecord: base})
//	// record UploadDone(up.Key, up.ETag) in the manifest, then evict locally
//	_, err = st.DownloadSegment(ctx, stream, segment, "/staging/hydrate.tmp", tier2.Expect{ETag: up.ETag})
//	rr, err := st.OpenSegmentRange(ctx, stream, segment, tier2.Expect{ETag: up.ETag})
//	// seekable-zstd reader over io.NewSectionReader(rr, 0, rr.Size())
//	listing, err := st.ListStream(ctx, stream) // reconciliation
//	err = st.DeleteSegment(ctx, stream, segment) // retention
//
// The store does not own the backend (a pluginapi/host Supervisor, an
// in-process backend, or a test fake) and starts no goroutines.
package tier2
