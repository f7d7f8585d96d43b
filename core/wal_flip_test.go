package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testscale"
)

// TestNodeWALBitFlipOnDisk flips bits of the node WAL's records on disk
// (their headers, the entries' headers and payload bytes) after a power
// loss that kept nothing the segments had not synced, so the WAL holds the
// only copy of most acknowledged records. Whatever the reopen does, a
// reader never gets a record other than the one appended at that id, and
// an acknowledged record missing is never silent: the open fails with a
// typed error, or the stream refuses appends as damaged, or the flip was
// in the bytes written after the WAL's durable mark, which recovery must
// take for a torn last write (docs/adr-node-wal.md).
func TestNodeWALBitFlipOnDisk(t *testing.T) {
	mk := func(fsys vfs.FS) Config {
		c := walShortConfig(fsys)
		c.WALCheckpointBytes = 1 << 30
		return c
	}
	base := vfs.NewMem()
	st, err := Open("/data", mk(base))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	o := &oracle{}
	// Past 2 MiB of records, so that the WAL has sealed segments (read
	// only by the replay) besides its tail (scanned by recovery).
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 400; i++ {
		p := randomPayload(rng, i)
		if i%3 == 0 {
			p = append(p, make([]byte, 12<<10)...)
		}
		id, n, err := appendWait(context.Background(), s, o, p)
		require.NoError(t, err)
		if i%4 == 3 {
			require.NoError(t, s.Flush(context.Background(), id))
			o.ack(n)
		}
	}
	world := base.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(7, 7))})
	require.NoError(t, st.Close())

	dir := "/data/wal/segments"
	names, err := world.List(dir)
	require.NoError(t, err)
	mark, err := segment.ReadMark(world, filepath.Join(dir, segment.MarkFile))
	require.NoError(t, err)
	// A spread of bits over every written record: headers, entry headers
	// and payloads alike (one reopen each, so not every bit).
	flips := int64(testscale.Count("AOF2_WAL_FLIPS", 400, 60))
	var segs []string
	for _, n := range names {
		if _, ok := segment.ParseFileName(n); ok {
			segs = append(segs, n)
		}
	}
	require.Greater(t, len(segs), 1, "the WAL has sealed segments")
	flips /= int64(len(segs))
	runs, accepts := 0, 0
	for _, n := range segs {
		name, _ := segment.ParseFileName(n)
		path := filepath.Join(dir, n)
		end := writtenEnd(t, world, path)
		var torn int64 = 1 << 62 // from here on a damaged record may be a torn write
		if mark != nil && mark.SegmentID == name.SegmentID {
			torn = int64(mark.DurableBytes)
		} else if mark == nil || mark.SegmentID < name.SegmentID {
			torn = segment.HeaderSize
		}
		every := max(1, (end-segment.HeaderSize)*8/flips) | 1 // odd: every bit position in a byte comes up
		for bit := int64(segment.HeaderSize) * 8; bit < end*8; bit += every {
			runs++
			mem := world.CrashClone(vfs.CrashOptions{})
			flipOnDisk(t, mem, path, bit/8, uint64(bit%8))
			accepted, err := checkAfterWALDamage(mk(mem), o, bit/8 >= torn)
			if accepted {
				accepts++
			}
			if err != nil {
				t.Fatalf("%s: bit %d (byte %d of %d written, torn from %d) flipped on disk: %v", n, bit, bit/8, end, torn, err)
			}
		}
	}
	require.Positive(t, runs)
	require.Positive(t, accepts)
	t.Logf("%d damaged reopens, %d refused and then settled by accepting the WAL's loss", runs, accepts)
}

// writtenEnd is the offset after the last non-zero byte of a segment's
// record area.
func writtenEnd(t *testing.T, fsys vfs.FS, path string) int64 {
	b, err := vfs.ReadFile(fsys, path)
	require.NoError(t, err)
	end := segment.DataEnd(int64(len(b)))
	for end > segment.HeaderSize && b[end-1] == 0 {
		end--
	}
	return end
}

// checkAfterWALDamage opens the store after damage of its node WAL: what
// it reads is what was appended, and acknowledged records missing are
// never silent. When the open refused (it failed, or the stream refuses
// appends), it checks that accepting the WAL's loss settles the store
// (checkAcceptWALLoss).
func checkAfterWALDamage(cfg Config, o *oracle, mayBeTorn bool) (accepted bool, err error) {
	refused, err := openAfterWALDamage(cfg, o, mayBeTorn)
	if err != nil || !refused {
		return false, err
	}
	return true, checkAcceptWALLoss(cfg, o)
}

func openAfterWALDamage(cfg Config, o *oracle, mayBeTorn bool) (refused bool, err error) {
	st, err := Open("/data", cfg)
	if err != nil {
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrDamaged) {
			return true, nil // refused, and said why
		}
		return false, fmt.Errorf("open failed with an untyped error: %w", err)
	}
	defer st.Close()
	s, err := st.Stream(1)
	if err != nil {
		return false, nil
	}
	refusal := s.Info().Refused
	refused = refusal != nil && errors.Is(refusal, ErrDamaged)
	err = o.check(s)
	var short *shortfallError
	switch {
	case err == nil:
		return refused, nil
	case errors.As(err, &short):
		if refused || mayBeTorn {
			return refused, nil
		}
		return false, fmt.Errorf("acknowledged records missing, and the stream takes appends: %w", err)
	case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrDamaged):
		return refused, nil
	}
	return false, err
}

// checkAcceptWALLoss opens a store whose damaged node WAL refused it with
// the loss accepted: the open succeeds and says what it did, the stream
// holds nothing but what was appended at those ids, takes appends again
// at ids never handed out before, the WAL's files are kept, and the next
// open (without accepting anything) finds nothing wrong.
func checkAcceptWALLoss(cfg Config, o *oracle) error {
	cfg.NodeWALAcceptLoss = true
	st, err := Open("/data", cfg)
	if err != nil {
		return fmt.Errorf("open accepting the node WAL's loss: %w", err)
	}
	defer st.Close()
	rep := st.NodeWALLoss()
	if rep == nil {
		return errors.New("accepting the node WAL's loss did nothing, though the store refused without it")
	}
	if names, err := cfg.FS.List(filepath.Join("/data", rep.KeptIn, "segments")); err != nil || len(names) == 0 {
		return fmt.Errorf("the WAL's files are not kept in %s: %v (%v)", rep.KeptIn, names, err)
	}
	s, err := st.Stream(1)
	if err != nil {
		return err
	}
	held, err := countRecords(s)
	if err != nil {
		return err
	}
	var short *shortfallError
	if err := o.check(s); err != nil && !errors.As(err, &short) {
		return fmt.Errorf("after accepting the loss: %w", err)
	}
	id, err := s.AppendCtx(context.Background(), []byte("after the loss"), AppendOptions{})
	if err != nil {
		return fmt.Errorf("append after accepting the loss: %w", err)
	}
	o.mu.Lock()
	last := o.ids[len(o.ids)-1]
	o.mu.Unlock()
	if id <= last {
		return fmt.Errorf("append after accepting the loss got id %s; %s was handed out before", id, last)
	}
	if err := s.Flush(context.Background(), id); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("close after accepting the loss: %w", err)
	}
	cfg.NodeWALAcceptLoss = false
	st, err = Open("/data", cfg)
	if err != nil {
		return fmt.Errorf("reopen after accepting the loss: %w", err)
	}
	defer st.Close()
	if st.NodeWALLoss() != nil {
		return errors.New("the reopen accepted a loss it was not asked to")
	}
	if s, err = st.Stream(1); err != nil {
		return err
	}
	if r := s.Info().Refused; r != nil {
		return fmt.Errorf("the stream refuses appends after the loss was accepted: %w", r)
	}
	n, err := countRecords(s)
	if err != nil || n != held+1 {
		return fmt.Errorf("after the reopen the stream holds %d records, want %d (%v)", n, held+1, err)
	}
	return nil
}

// TestNodeWALStreamBitFlipAcceptLoss flips bits of a stream's tail segment
// where its durable mark proves records, after a power loss that kept only
// what was synced, so the node WAL alone holds the newest records, and
// holds the ones before them since its last checkpoint too. Whenever the
// open finds the damage, accepting the stream's loss must lose only the
// records in the ranges it filled, and none where the WAL has a copy:
// every other acknowledged record reads back at its id, the next append
// takes an id never handed out, the WAL's checkpoints resume, and a reopen
// finds nothing wrong.
func TestNodeWALStreamBitFlipAcceptLoss(t *testing.T) {
	ctx := context.Background()
	mk := func(fsys vfs.FS) Config {
		return Config{FS: fsys, NodeWAL: true, WALCheckpointBytes: 1 << 30, MaxUnflushedBytes: -1, SegmentSize: 1 << 20, InitialSegmentSize: 1 << 20,
			DurableMarkInterval: time.Nanosecond} // every sync proves what it synced
	}
	base := vfs.NewMem()
	st, err := Open("/data", mk(base))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	o := &oracle{}
	rng := rand.New(rand.NewPCG(9, 9))
	appendN := func(n int) {
		for range n {
			i := len(o.ids)
			p := randomPayload(rng, i)
			p = p[:min(200, len(p))]
			id, err := s.AppendDurable(ctx, p, AppendOptions{})
			require.NoError(t, err)
			o.ack(o.appended(id, p))
		}
	}
	// Records 0-199 are only in the segment (the WAL's checkpoint passed
	// them), 200-299 in both (the segment synced, the WAL not
	// checkpointed: damage there heals from the WAL), 300-329 only in
	// the WAL.
	appendN(200)
	require.NoError(t, st.wal.checkpoint(st.wal.last))
	appendN(100)
	require.NoError(t, s.syncSegments())
	appendN(30)
	world := base.CrashClone(vfs.CrashOptions{})
	require.NoError(t, st.Close())
	mark, err := segment.ReadMark(world, "/data/streams/1/segments/"+segment.MarkFile)
	require.NoError(t, err)
	require.NotNil(t, mark)
	path := tailPathIn(t, world, "/data/streams/1/segments")
	proven := int64(mark.DurableBytes)
	require.Greater(t, proven, int64(segment.HeaderSize))
	require.Equal(t, int64(o.ids[300].Offset()), proven, "the mark proves the first 300 records")

	flips := int64(testscale.Count("AOF2_WAL_FLIPS", 150, 30))
	every := max(1, (proven-segment.HeaderSize)*8/flips) | 1
	runs, accepted, healedAtOpen, fromWAL := 0, 0, 0, uint64(0)
	for bit := int64(segment.HeaderSize) * 8; bit < proven*8; bit += every {
		runs++
		mem := world.CrashClone(vfs.CrashOptions{})
		flipOnDisk(t, mem, path, bit/8, uint64(bit%8))
		n, err := checkStreamDamageAcceptLoss(ctx, mk(mem), o)
		if err != nil {
			t.Fatalf("bit %d (byte %d, proven to %d) flipped: %v", bit, bit/8, proven, err)
		}
		switch inWAL := bit/8 >= int64(o.ids[200].Offset()); {
		case n == -2:
		case n == -1:
			healedAtOpen++
		case inWAL:
			t.Fatalf("bit %d (byte %d) flipped in a record the WAL holds, and the open did not heal it", bit, bit/8)
		default:
			accepted++
			fromWAL += uint64(n)
		}
	}
	require.Positive(t, accepted)
	require.Positive(t, fromWAL)
	require.Positive(t, healedAtOpen, "damage after the WAL's checkpoint heals at open")
	t.Logf("%d flips: %d healed at open from the WAL's copy, %d accepted losses (%d records written back from the WAL)", runs, healedAtOpen, accepted, fromWAL)

	// A file cut short inside the records the WAL holds heals at open
	// too: the heal extends it to its capacity, then writes them back.
	for _, cut := range []int64{int64(o.ids[200].Offset()) + 1, int64(o.ids[250].Offset()) + 7, int64(o.ids[299].Offset()) + 100} {
		mem := world.CrashClone(vfs.CrashOptions{})
		f, err := mem.OpenReadWrite(path)
		require.NoError(t, err)
		require.NoError(t, f.Truncate(cut))
		require.NoError(t, f.Sync())
		require.NoError(t, f.Close())
		n, err := checkStreamDamageAcceptLoss(ctx, mk(mem), o)
		require.NoError(t, err, "cut at %d", cut)
		require.Equal(t, -1, n, "cut at %d: healed at open", cut)
	}
}

// checkStreamDamageAcceptLoss opens the store after damage of stream 1's
// tail. When the stream takes appends every acknowledged record must be
// there, and it returns -1 if the open healed it from the WAL's copy (and
// recorded that in the manifest), -2 if the flip hit nothing a record
// needs; when it refuses them, it accepts the loss, checks what is left
// and returns the records written back from the WAL. Either way the next append gets
// a new id, the WAL is not blocked, and a reopen is clean.
func checkStreamDamageAcceptLoss(ctx context.Context, cfg Config, o *oracle) (fromWAL int, err error) {
	st, err := Open("/data", cfg)
	if err != nil {
		return 0, fmt.Errorf("open: %w", err)
	}
	defer st.Close()
	s, err := st.Lookup(1)
	if err != nil {
		return 0, err
	}
	var rep LossReport
	var d *DamageError
	if refused := s.Info().Refused; refused == nil {
		if err := o.check(s); err != nil {
			return 0, fmt.Errorf("the stream takes appends after the open: %w", err)
		}
		healed, ok := healRecorded(ctx, cfg.FS)
		if !ok {
			return -2, nil // the flip hit nothing a record needs (padding)
		}
		if g, ok := s.Segment(healed); !ok || g.Footer == nil || g.Footer.Flags&segment.FlagLossAccepted != 0 {
			return 0, fmt.Errorf("segment %d healed whole: sealed without the loss-accepted flag, got %+v", healed, g.Footer)
		}
	} else if !errors.As(refused, &d) {
		return 0, fmt.Errorf("refused for something else than its damage: %w", refused)
	} else if rep, err = s.AcceptLoss(ctx); err != nil {
		return 0, fmt.Errorf("accept loss: %w", err)
	}
	if rep.NodeWALKept != 0 || st.wal.blockedErr() != nil {
		return 0, fmt.Errorf("after the accepted loss the WAL keeps %d entries (blocked: %v)", rep.NodeWALKept, st.wal.blockedErr())
	}
	filled := func(id RecordID) bool {
		for _, f := range rep.Filled {
			if id.Segment() == rep.Segment && int64(id.Offset()) >= f[0] && int64(id.Offset()) < f[1] {
				return true
			}
		}
		return false
	}
	r, err := s.NewReader(AtStart())
	if err != nil {
		return 0, err
	}
	defer r.Close()
	o.mu.Lock()
	defer o.mu.Unlock()
	k := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read after the accepted loss: %w", err)
		}
		for k < len(o.ids) && o.ids[k] != rec.ID {
			if !filled(o.ids[k]) {
				return 0, fmt.Errorf("acknowledged record %s is missing but was not in a filled range %v", o.ids[k], rep.Filled)
			}
			k++
		}
		if k == len(o.ids) || !bytes.Equal(rec.Payload, o.payloads[k]) {
			return 0, fmt.Errorf("record %s was never appended there", rec.ID)
		}
		k++
	}
	for ; k < len(o.ids); k++ {
		if !filled(o.ids[k]) {
			return 0, fmt.Errorf("acknowledged record %s is missing at the end (filled %v, %d from the WAL)", o.ids[k], rep.Filled, rep.FromNodeWAL)
		}
	}
	id, err := s.AppendDurable(ctx, []byte("after the accepted loss"), AppendOptions{})
	if err != nil {
		return 0, err
	}
	if id <= o.ids[len(o.ids)-1] {
		return 0, fmt.Errorf("append after the accepted loss got id %s, handed out before", id)
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	st2, err := Open("/data", cfg)
	if err != nil {
		return 0, fmt.Errorf("reopen: %w", err)
	}
	defer st2.Close()
	if err := st2.wal.blockedErr(); err != nil {
		return 0, fmt.Errorf("reopen: the WAL is blocked: %w", err)
	}
	if s, err = st2.Lookup(1); err != nil || s.Info().Refused != nil {
		return 0, fmt.Errorf("reopen: stream 1: %v %v", err, s.Info().Refused)
	}
	if d == nil {
		return -1, nil
	}
	return int(rep.FromNodeWAL), nil
}

// healRecorded reports whether stream 1's manifest records a loss_accepted
// event for a heal at open that left no filler, and which segment it healed.
func healRecorded(ctx context.Context, fsys vfs.FS) (SegmentID, bool) {
	reps, err := customEvents[LossReport](ctx, fsys, "/data/streams/1", 1, manifest.SchemaLossAccepted)
	if err != nil {
		return 0, false
	}
	for _, rep := range reps {
		if rep.Healed && rep.FromNodeWAL > 0 && len(rep.Filled) == 0 {
			return rep.Segment, true
		}
	}
	return 0, false
}

// TestNodeWALDamageKeepsWhatContinues: two streams append through the
// node WAL, which alone holds their records after a power loss; a bit
// flips in one of stream 1's entries in the WAL's tail. Accepting the
// WAL's loss keeps stream 1's records before that entry only (the next
// one is gone, and a segment cannot hold a hole), and every record of
// stream 2, whose entries past the damage continue it exactly.
func TestNodeWALDamageKeepsWhatContinues(t *testing.T) {
	ctx := context.Background()
	mk := func(fsys vfs.FS) Config {
		return Config{FS: fsys, NodeWAL: true, WALCheckpointBytes: 1 << 30, MaxUnflushedBytes: -1, SegmentSize: 1 << 20, InitialSegmentSize: 1 << 20}
	}
	base := vfs.NewMem()
	st, err := Open("/data", mk(base))
	require.NoError(t, err)
	streams := make([]*Stream, 2)
	for i := range streams {
		streams[i], err = st.Stream(StreamID(i + 1))
		require.NoError(t, err)
	}
	payloads := map[StreamID][][]byte{}
	for i := range 60 {
		for _, s := range streams {
			p := payloadFor(i*2+int(s.ID()), 150)
			_, err := s.AppendDurable(ctx, p, AppendOptions{})
			require.NoError(t, err)
			payloads[s.ID()] = append(payloads[s.ID()], p)
		}
	}
	world := base.CrashClone(vfs.CrashOptions{}) // the streams' segments never synced
	require.NoError(t, st.Close())

	// Stream 1's entry 30 in the WAL's tail.
	path := tailPathIn(t, world, "/data/wal/segments")
	b, err := vfs.ReadFile(world, path)
	require.NoError(t, err)
	offs, end := segment.Intact(b, segment.HeaderSize, segment.DataEnd(int64(len(b))))
	var victim int64
	seen := 0
	for _, off := range offs {
		rec, err := segment.ReadRecord(b, path, int64(off), end)
		require.NoError(t, err)
		e, err := decodeWALEntry(rec.Payload)
		require.NoError(t, err)
		if e.stream == 1 {
			if seen == 30 {
				victim = int64(off)
				break
			}
			seen++
		}
	}
	require.Positive(t, victim)
	flipOnDisk(t, world, path, victim+segment.RecordHeaderSize+40, 3)

	refusing, err := Open("/data", mk(world.CrashClone(vfs.CrashOptions{})))
	require.NoError(t, err, "the open refuses appends, it does not fail")
	s2, err := refusing.Lookup(2)
	require.NoError(t, err)
	require.ErrorIs(t, s2.Info().Refused, ErrDamaged, "every stream, while the WAL is damaged")
	require.NoError(t, refusing.Close())
	cfg := mk(world)
	cfg.NodeWALAcceptLoss = true
	st, err = Open("/data", cfg)
	require.NoError(t, err)
	rep := st.NodeWALLoss()
	require.NotNil(t, rep)
	got := map[StreamID]WALLossStream{}
	for _, ls := range rep.Streams {
		got[ls.Stream] = ls
	}
	require.Equal(t, uint64(30), got[1].Records, "stream 1 up to its damaged entry")
	require.Zero(t, got[1].PastDamage)
	require.Equal(t, uint64(60), got[2].Records, "stream 2 whole")
	require.Equal(t, uint64(30), got[2].PastDamage, "stream 2's entries past the damage")
	for _, s := range []StreamID{1, 2} {
		str, err := st.Lookup(s)
		require.NoError(t, err)
		recs := readEvery(t, str)
		require.Len(t, recs, int(got[s].Records))
		for i, r := range recs {
			require.Equal(t, payloads[s][i], r.Payload, "stream %d record %d", s, i)
		}
		_, err = str.AppendDurable(ctx, []byte("after"), AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, st.Close())
}
