package manifest_test

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/vfs"
)

// The tier-0 engine's use of the log: record a segment's life, acknowledge
// its seal only once the record is committed, and find it again after a
// restart.
func Example() {
	ctx := context.Background()
	fsys := vfs.NewMem() // vfs.OS in production
	dir := "data/streams/42"
	opts := manifest.Options{Registerer: prometheus.NewRegistry(), LogOnly: true}

	log, err := manifest.Open(ctx, fsys, dir, 42, opts)
	if err != nil {
		panic(err)
	}
	seg := manifest.Header{SegmentID: 1}
	if err := log.AppendCommit(ctx, manifest.SegmentOpened{Header: seg, BaseOffset: 0, Epoch: 1}); err != nil {
		panic(err)
	}
	// Rollover: the seal and the next segment's opening, atomically.
	err = log.AppendCommit(ctx,
		manifest.SealSegment{Header: seg, DurableBytes: 4096, SegmentCRC64: 0xfeed, ExtID: 7},
		manifest.SegmentOpened{Header: manifest.Header{SegmentID: 2, LogicalOffset: 4096}, BaseOffset: 4096, Epoch: 1},
	)
	if err != nil {
		panic(err) // not acknowledged: the engine must not report the seal
	}
	if err := log.Close(); err != nil {
		panic(err)
	}

	log, err = manifest.Open(ctx, fsys, dir, 42, opts)
	if err != nil {
		panic(err)
	}
	defer log.Close()
	st := log.Replay()
	fmt.Println("corruption events:", st.CorruptionEvents, "needs repair:", st.NeedsRepair)
	for _, s := range log.Index().Segments() {
		fmt.Println(s.SegmentID, s.Residency, "sealed:", s.Sealed, "durable bytes:", s.DurableBytes)
	}
	// Output:
	// corruption events: 0 needs repair: false
	// 1 resident_in_tier0 sealed: true durable bytes: 4096
	// 2 resident_in_tier0 sealed: false durable bytes: 0
}
