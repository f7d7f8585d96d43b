package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/checksum"
)

type demoOptions struct {
	dir                    string
	keep                   bool
	writers, records, size int
	segmentSize            int64
}

func demoFlags(stderr io.Writer) (*flag.FlagSet, *demoOptions) {
	o := &demoOptions{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", "", "data directory (default: a fresh temporary directory, removed afterwards)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary data directory")
	fs.IntVar(&o.writers, "writers", 16, "concurrent appenders, each waiting for a durable ack per record")
	fs.IntVar(&o.records, "records", 50000, "records to append in total")
	fs.IntVar(&o.size, "size", 256, "payload bytes per record (at least 16)")
	fs.Int64Var(&o.segmentSize, "segment-size", 1<<20, "segment file size (power of two, 1 MiB..1 GiB); small means many rollovers")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: aof2-host demo [flags]\n\nAppends records from concurrent writers with a durable ack for each,")
		fmt.Fprintln(stderr, "across many segment rollovers; closes the store, reopens it (recovery), reads")
		fmt.Fprintln(stderr, "every record back, verifies it, and prints a summary.\n\nexample:\n  aof2-host demo -records 200000 -size 1024 -writers 64\n\nflags:")
		fs.PrintDefaults()
	}
	return fs, o
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := demoFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case o.writers < 1 || o.records < 1:
		return usageError{fmt.Errorf("-writers and -records must be positive")}
	case o.size < 16:
		return usageError{fmt.Errorf("-size must be at least 16")}
	}
	if o.dir == "" {
		dir, err := os.MkdirTemp("", "aof2-demo-")
		if err != nil {
			return err
		}
		o.dir = dir
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	}
	cfg := core.Config{SegmentSize: o.segmentSize}
	st, err := core.Open(o.dir, cfg)
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintf(stdout, "data dir   %s\n", o.dir)
	w, err := demoWrite(ctx, st, o)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "appended   %d records (%s) from %d writers in %s: %.0f records/s, %.1f MB/s\n",
		o.records, sizeOf(int64(o.records)*int64(o.size)), o.writers, w.elapsed.Round(time.Millisecond),
		float64(o.records)/w.elapsed.Seconds(), float64(o.records)*float64(o.size)/w.elapsed.Seconds()/1e6)
	fmt.Fprintf(stdout, "durable    every record acknowledged durable: ack latency p50 %s, p99 %s\n",
		w.p50.Round(time.Microsecond), w.p99.Round(time.Microsecond))

	t0 := time.Now()
	st, err = core.Open(o.dir, cfg)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer st.Close()
	s, err := st.Lookup(1)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	opened := time.Since(t0)
	for _, rep := range st.Recovery() {
		fmt.Fprintf(stdout, "reopened   in %s: %d segments (%d sealed, %d rollovers), %d records, %d torn bytes dropped\n",
			opened.Round(time.Microsecond), rep.Segments, rep.Sealed, rep.Segments-1, rep.Records, rep.DroppedBytes)
	}
	r, err := demoRead(s, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "read back  %d records in %s: %.0f records/s, %.1f MB/s, every payload verified\n",
		r.records, r.elapsed.Round(time.Millisecond), float64(r.records)/r.elapsed.Seconds(),
		float64(r.records)*float64(o.size)/r.elapsed.Seconds()/1e6)
	return st.Close()
}

type writeResult struct {
	elapsed  time.Duration
	p50, p99 time.Duration
}

// demoPayload encodes the writer and its sequence number and fills the rest
// deterministically, so the read-back can verify every byte.
func demoPayload(buf []byte, writer, seq int) []byte {
	binary.LittleEndian.PutUint32(buf[0:], uint32(writer))
	binary.LittleEndian.PutUint32(buf[4:], uint32(seq))
	for i := 16; i < len(buf); i++ {
		buf[i] = byte(writer*31 + seq*7 + i)
	}
	binary.LittleEndian.PutUint64(buf[8:], checksum.Sum64(buf[16:]))
	return buf
}

func demoWrite(ctx context.Context, st *core.Store, o *demoOptions) (writeResult, error) {
	s, err := st.Stream(1)
	if err != nil {
		return writeResult{}, err
	}
	lat := make([][]time.Duration, o.writers)
	errs := make([]error, o.writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range o.writers {
		n := o.records / o.writers
		if w < o.records%o.writers {
			n++
		}
		wg.Go(func() {
			buf := make([]byte, o.size)
			for seq := range n {
				t0 := time.Now()
				if _, err := s.AppendDurable(ctx, demoPayload(buf, w, seq), core.AppendOptions{}); err != nil {
					errs[w] = fmt.Errorf("writer %d record %d: %w", w, seq, err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	res := writeResult{elapsed: time.Since(start)}
	for _, err := range errs {
		if err != nil {
			return res, err
		}
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.p50, res.p99 = all[len(all)/2], all[len(all)*99/100]
	return res, nil
}

type readResult struct {
	records int
	elapsed time.Duration
}

// demoRead reads the stream from the start and checks that each writer's
// records arrive complete, intact and in its order.
func demoRead(s *core.Stream, o *demoOptions) (readResult, error) {
	start := time.Now()
	rd, err := s.NewReader(core.AtStart())
	if err != nil {
		return readResult{}, err
	}
	next := make([]int, o.writers)
	want := make([]byte, o.size)
	n := 0
	for ; ; n++ {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return readResult{}, fmt.Errorf("record %d: %w", n, err)
		}
		w := int(binary.LittleEndian.Uint32(rec.Payload))
		if len(rec.Payload) != o.size || w >= o.writers {
			return readResult{}, fmt.Errorf("record %d (%s): unexpected payload", n, rec.ID)
		}
		if string(rec.Payload) != string(demoPayload(want, w, next[w])) {
			return readResult{}, fmt.Errorf("record %d (%s): writer %d record %d does not match what was appended", n, rec.ID, w, next[w])
		}
		next[w]++
	}
	if n != o.records {
		return readResult{}, fmt.Errorf("read %d records, appended %d", n, o.records)
	}
	return readResult{records: n, elapsed: time.Since(start)}, nil
}

func sizeOf(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}
