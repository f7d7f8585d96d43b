// Package restore rebuilds a data directory from tier 2 alone
// (docs/adr-restore.md): after a lost disk, the prefix holds every
// segment a node uploaded and the manifest history that says what they
// are, and nothing else is needed to serve them again.
//
// Per stream it installs the tier-2 manifest (the newest snapshot that
// verifies and the chunks from its position on, which must be
// contiguous), records every segment tier 2 holds as cold (a stub written
// from the artifact's header and footer, read by ranged reads; no segment
// bytes are downloaded), and every id the history, the segment objects or
// the stream's reservation name but tier 2 does not hold as a lost
// segment whose loss the restore accepts, so that no id the lost node
// may have handed out is ever given to another record. The result is an
// ordinary data directory: opening it needs no network, reads of cold
// segments hydrate or read by range as for any cold segment, and appends
// continue after the last id.
//
// A stream is built in a staging directory (<data_dir>/restore.tmp/<id>)
// and renamed into streams/ once complete, so a restore killed at any
// point leaves each stream either absent or whole; the staging directory
// exists until every stream is done, and serve refuses to start while it
// does. Rerunning restore converges: finished streams are skipped.
package restore
