package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// oracle remembers every record appended to one stream, in order, and how
// many of them were acknowledged (a Flush or AppendDurable covering them
// returned nil). Durability is prefix-based, so one count suffices.
type oracle struct {
	mu       sync.Mutex
	payloads [][]byte
	ids      []RecordID
	acked    int
}

func (o *oracle) appended(id RecordID, p []byte) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.payloads = append(o.payloads, p)
	o.ids = append(o.ids, id)
	return len(o.ids)
}

// ack marks records [0, n) acknowledged.
func (o *oracle) ack(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.acked = max(o.acked, n)
}

// check verifies a recovered stream: every acknowledged record is there,
// and whatever is there is exactly the appended sequence (a record that was
// appended but never acknowledged may or may not survive; nothing else
// may appear, and nothing may be duplicated or reordered).
func (o *oracle) check(s *Stream) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := s.NewReader(AtStart())
	if err != nil {
		return fmt.Errorf("new reader: %w", err)
	}
	n := 0
	for ; ; n++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read record %d: %w", n, err)
		}
		if n >= len(o.payloads) {
			return fmt.Errorf("record %d (%s) was never appended (%d appended)", n, rec.ID, len(o.payloads))
		}
		if rec.Ordinal != uint64(n) || rec.ID != o.ids[n] || !bytes.Equal(rec.Payload, o.payloads[n]) {
			return fmt.Errorf("record %d: got id %s ordinal %d len %d, want id %s len %d", n, rec.ID, rec.Ordinal, len(rec.Payload), o.ids[n], len(o.payloads[n]))
		}
	}
	if n < o.acked {
		return &shortfallError{recovered: n, acked: o.acked, appended: len(o.payloads)}
	}
	return nil
}

// shortfallError: a reader reached the end of the stream before the last
// acknowledged record, without an error saying why.
type shortfallError struct{ recovered, acked, appended int }

func (e *shortfallError) Error() string {
	return fmt.Sprintf("lost acknowledged records: recovered %d, acknowledged %d (appended %d)", e.recovered, e.acked, e.appended)
}

// truncateTo forgets records the recovered stream does not have, so the
// oracle can follow a stream across several crashes.
func (o *oracle) truncateTo(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.payloads, o.ids = o.payloads[:n], o.ids[:n]
	o.acked = min(o.acked, n)
}

func countRecords(s *Stream) (int, error) {
	r, err := s.NewReader(AtStart())
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		if _, err := r.Next(); err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, err
		}
		n++
	}
}

// randomPayload draws mostly small records, some medium and a few large
// enough to force rollovers of 1 MiB segments.
func randomPayload(rng *rand.Rand, seq int) []byte {
	var n int
	switch x := rng.IntN(100); {
	case x < 70:
		n = 1 + rng.IntN(300)
	case x < 95:
		n = 1 + rng.IntN(20000)
	default:
		n = 50000 + rng.IntN(250000)
	}
	p := make([]byte, n)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rng.Uint64())
	_, _ = rand.NewChaCha8(seed).Read(p)
	copy(p, fmt.Sprintf("%d", seq))
	return p
}

// workload drives a stream with a random mix of appends, batches, flushes,
// durable appends and seals until ops are done or ctx ends. It returns the
// first error that is not explained by ctx.
func workload(ctx context.Context, rng *rand.Rand, s *Stream, o *oracle, ops int) error {
	for i := 0; i < ops && ctx.Err() == nil; i++ {
		switch x := rng.IntN(100); {
		case x < 55:
			p := randomPayload(rng, i)
			id, err := s.AppendCtx(ctx, p, AppendOptions{ExtID: uint64(i)})
			if err != nil {
				return err
			}
			o.appended(id, p)
		case x < 65:
			batch := make([][]byte, 1+rng.IntN(8))
			for j := range batch {
				batch[j] = randomPayload(rng, i)
			}
			ids, err := s.AppendBatch(batch, AppendOptions{ExtID: uint64(i)})
			for j, id := range ids {
				o.appended(id, batch[j])
			}
			if err != nil && !errors.Is(err, ErrWouldBlock) {
				return err
			}
		case x < 80:
			o.mu.Lock()
			n := len(o.ids)
			var last RecordID
			if n > 0 {
				last = o.ids[n-1]
			}
			o.mu.Unlock()
			if n == 0 {
				continue
			}
			if err := s.Flush(ctx, last); err != nil {
				return err
			}
			o.ack(n)
		case x < 95:
			p := randomPayload(rng, i)
			// Register the record before waiting: it may survive even if
			// the wait fails.
			id, err := s.AppendCtx(ctx, p, AppendOptions{ExtID: uint64(i)})
			if err != nil {
				return err
			}
			n := o.appended(id, p)
			if err := s.Flush(ctx, id); err != nil {
				return err
			}
			o.ack(n)
		default:
			o.mu.Lock()
			n := len(o.ids)
			o.mu.Unlock()
			if err := s.Seal(ctx); err != nil {
				return err
			}
			o.ack(n)
		}
	}
	return nil
}

// randomConfig picks a configuration for a crash cycle.
func randomConfig(rng *rand.Rand, fsys vfs.FS) Config {
	cfg := Config{FS: fsys, SegmentSize: segment.MinCapacity, MaxUnflushedBytes: -1}
	cfg.Sync = []SyncPolicy{SyncAlways, SyncInterval, SyncNone}[rng.IntN(3)]
	cfg.WriteMode = []segment.WriteMode{segment.WriteMmap, segment.WriteMmap, segment.WritePwrite}[rng.IntN(3)]
	cfg.Preparation = []segment.Preparation{segment.PrepareFallocate, segment.PrepareFallocate, segment.PrepareSmallPages}[rng.IntN(3)]
	if rng.IntN(4) == 0 {
		cfg.SegmentTargetBytes = 64 << 10
	}
	// Segments start at 64 KiB (the default) and grow, or start larger,
	// or do not grow at all.
	cfg.InitialSegmentSize = []int64{0, 0, 128 << 10, segment.MinCapacity}[rng.IntN(4)]
	if rng.IntN(2) == 0 {
		cfg.syncLinger = time.Millisecond // syncers stop and start all the time
	}
	if cfg.Sync == SyncAlways && rng.IntN(2) == 0 {
		// Durable through the node WAL, checkpointed now and then or often.
		cfg.NodeWAL = true
		cfg.WALCheckpointBytes = []int64{0, 4 << 10, 32 << 10}[rng.IntN(3)]
	}
	return cfg
}
