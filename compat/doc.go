// Package compat holds the compatibility tests of the on-disk and in-bucket
// formats (docs/compatibility.md): testdata/v1 is a data directory and an
// fs-backend tier 2 written by the release that introduced format v1 —
// segment files (sealed, active, with the seal's hole), manifest chunks
// and snapshots, tier-1 artifacts, tier-2 objects and the tier-2 manifest —
// and every later build must open it, read every record back byte for
// byte and verify every copy. The directory is regenerated only when a
// format changes on purpose (`go test ./compat -run Golden -update`),
// which then needs a new format version and a compatibility note.
package compat
