package segment

import (
	"sort"
	"sync/atomic"
)

// IndexInterval is the spacing of sparse index entries: one per this many
// bytes of records. Finding a record by offset or ordinal hops over at most
// this many bytes of record headers.
const IndexInterval = 64 << 10

// IndexEntry points at the first record that starts at or after a multiple
// of IndexInterval.
type IndexEntry struct {
	Offset  uint32 // offset of the record header in the segment
	Ordinal uint32 // index of the record within the segment
}

// Index is a sparse, append-only index of a segment's records. One
// goroutine adds entries (the writer, or a scan); any number read
// concurrently.
type Index struct {
	entries atomic.Pointer[[]IndexEntry]
	next    int64 // writer-owned: the next boundary to record
}

// NewIndex returns an index holding the first record position.
func NewIndex() *Index {
	ix := &Index{next: IndexInterval}
	e := []IndexEntry{{Offset: HeaderSize, Ordinal: 0}}
	ix.entries.Store(&e)
	return ix
}

// Add records a record at off with in-segment ordinal ord if it is the
// first at or after the next boundary. Offsets must be added in order.
func (ix *Index) Add(off int64, ord uint64) {
	if off < ix.next {
		return
	}
	old := *ix.entries.Load()
	e := append(old, IndexEntry{Offset: uint32(off), Ordinal: uint32(ord)})
	ix.entries.Store(&e)
	ix.next = (off/IndexInterval + 1) * IndexInterval
}

// SeekOffset returns the last entry at or before off.
func (ix *Index) SeekOffset(off int64) IndexEntry {
	e := *ix.entries.Load()
	i := sort.Search(len(e), func(i int) bool { return int64(e[i].Offset) > off })
	return e[max(i-1, 0)]
}

// SeekOrdinal returns the last entry whose ordinal is at or before ord.
func (ix *Index) SeekOrdinal(ord uint64) IndexEntry {
	e := *ix.entries.Load()
	i := sort.Search(len(e), func(i int) bool { return uint64(e[i].Ordinal) > ord })
	return e[max(i-1, 0)]
}

// Len returns the number of entries.
func (ix *Index) Len() int { return len(*ix.entries.Load()) }
