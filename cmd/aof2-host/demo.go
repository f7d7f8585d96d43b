package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/host/node"
	"github.com/aof2/aof2/host/server"
)

// demoStream is the stream the demo writes.
const demoStream client.StreamID = 1

// demoHeader is the self-describing start of every demo payload: client
// (4 bytes), sequence number (4) and a checksum of the rest (8).
const demoHeader = 16

type demoOptions struct {
	dir, pluginDir         string
	keep                   bool
	clients, records, size int
	segmentSize            string
	tier0, tier1           string
	wait                   time.Duration
}

func demoFlags(stderr io.Writer) (*flag.FlagSet, *demoOptions) {
	o := &demoOptions{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", "", "data directory, empty or new (default: a fresh temporary directory, removed afterwards)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary data directory")
	fs.IntVar(&o.clients, "clients", 8, "concurrent clients, each with its own connection, each waiting for a durable ack per record")
	fs.IntVar(&o.records, "records", 20000, "records to append in total")
	fs.IntVar(&o.size, "size", 1024, fmt.Sprintf("payload bytes per record (at least %d)", demoHeader))
	fs.StringVar(&o.segmentSize, "segment-size", "1MiB", "segment file size (a power of two, 1MiB..1GiB); small means many rollovers")
	fs.StringVar(&o.tier0, "tier0-max-bytes", "4MiB", "tier-0 budget: segment files kept on local disk")
	fs.StringVar(&o.tier1, "tier1-max-bytes", "2MiB", "tier-1 budget: compressed warm copies kept on local disk")
	fs.StringVar(&o.pluginDir, "plugin-dir", "", "directory of aof2-plugin-fs (default: next to the aof2-host binary)")
	fs.DurationVar(&o.wait, "wait", 2*time.Minute, "how long to wait for the tier-2 uploads")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: aof2-host demo [flags]

Starts a host in-process with tiny budgets (1 MiB segments, a tier 0 of a few
segments, a small warm cache, the fs plugin as tier 2 in <dir>/tier2), serves
the gRPC API on a loopback port and drives it through the client package:
concurrent clients append records with a durable ack each, across many
rollovers, so sealed segments move to tier 1 (zstd) and tier 2 (the plugin)
and leave tier 0. Then it reads every record back (cold segments hydrate),
reads the oldest segment once more cold and times it, verifies every payload,
prints the tier table along the way and stops the host.

The plugin binary aof2-plugin-fs must sit next to aof2-host (or in
-plugin-dir): 'make demo' builds both into bin/ and runs this.

example:
  aof2-host demo -clients 16 -records 40000 -size 2048

flags:
`)
		fs.PrintDefaults()
	}
	return fs, o
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs, o := demoFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case o.clients < 1 || o.records < 1:
		return usagef("-clients and -records must be positive")
	case o.records < o.clients:
		return usagef("-records (%d) must be at least -clients (%d)", o.records, o.clients)
	case o.size < demoHeader:
		return usagef("-size must be at least %d", demoHeader)
	case o.wait <= 0:
		return usagef("-wait must be positive")
	}

	dir, temp := o.dir, o.dir == ""
	if temp {
		if dir, err = os.MkdirTemp("", "aof2-demo-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return usagef("-dir %s is not empty: the demo needs a fresh data directory", dir)
	}
	cfg, err := demoConfig(dir, o)
	if err != nil {
		return err
	}
	if maxRec := maxRecordSize(cfg); o.size > maxRec {
		return usagef("-size %d exceeds the largest record of a %s segment (%d)", o.size, dump.Bytes(cfg.Segment.Size), maxRec)
	}
	if need := cfg.Tier0.MaxBytes + cfg.Segment.Size; cfg.Tier0.MaxBytes == 0 || int64(o.records)*int64(o.size) <= need {
		return usagef("the workload (%d × %d B = %s) must exceed the tier-0 budget plus one segment (%s) for data to leave tier 0: raise -records or -size",
			o.records, o.size, dump.Bytes(int64(o.records)*int64(o.size)), dump.Bytes(need))
	}
	pluginPath, err := cfg.PluginPath()
	if err != nil {
		return fmt.Errorf("%w\nThe demo runs the fs plugin binary aof2-plugin-fs, which must sit next to aof2-host (or in -plugin-dir).\n"+
			"Run 'make demo': it builds both into bin/ and starts the demo", err)
	}

	out := &demoOut{w: stdout}
	out.printf("AOF2 demo: one host with tiny budgets, driven through the gRPC client API\n\n")
	keepNote := "kept"
	if temp && !o.keep {
		keepNote = "removed at the end; -keep keeps it"
	}
	out.printf("  data dir   %s (%s)\n", dir, keepNote)
	out.printf("  tier 0     %s segment files, budget %s: the active segment plus the most recent sealed ones\n",
		dump.Bytes(cfg.Segment.Size), dump.Bytes(cfg.Tier0.MaxBytes))
	out.printf("  tier 1     zstd copies of sealed segments, budget %s\n", dump.Bytes(cfg.Tier1.MaxBytes))
	out.printf("  tier 2     the fs plugin (%s), objects in %s\n", pluginPath, cfg.Tier2.Settings["root"])
	out.printf("  workload   %d clients append %d records of %s to stream %d, each waiting for a durable ack\n\n",
		o.clients, o.records, dump.Bytes(int64(o.size)), demoStream)

	h, err := startDemoHost(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, h.stop())
		if err == nil {
			out.printf("host stopped: client API drained, store flushed and closed, plugin stopped\n")
		}
	}()
	out.printf("host started in %s, gRPC on %s\n", h.started.Round(time.Millisecond), h.addr)

	cs := make([]*client.Client, o.clients)
	for i := range cs {
		c, err := client.Dial(ctx, h.addr)
		if err != nil {
			return err
		}
		defer c.Close()
		cs[i] = c
	}
	d := &demo{o: o, out: out, c: cs[0], cs: cs}
	return d.run(ctx, cfg)
}

// demoConfig builds the demo host's configuration the way serve does, from
// flags alone (no file, no AOF2_* variables): tiny budgets, quick scans,
// the default tier 2 (the fs plugin in <dir>/tier2), gRPC on a free
// loopback port.
func demoConfig(dir string, o *demoOptions) (*config.Config, error) {
	args := []string{
		"-data-dir", dir,
		"-segment-size", o.segmentSize,
		"-tier0-max-bytes", o.tier0,
		"-tier1-max-bytes", o.tier1,
		"-listen-grpc", "127.0.0.1:0", "-listen-http", "",
		"-coordinator-scan-interval", "50ms",
		"-log-level", "warn",
	}
	if o.pluginDir != "" {
		args = append(args, "-plugin-dir", o.pluginDir)
	}
	// The plugin is looked up after the flags are checked (runDemo), so
	// that a missing binary gets its own message.
	cfg, err := config.Load(args, nil, config.WithDefaultFile(""), config.SkipPluginLookup())
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// demoHost is the node and the gRPC server in front of it.
type demoHost struct {
	n       *node.Node
	srv     *server.Server
	addr    string
	served  chan error
	started time.Duration
}

func startDemoHost(ctx context.Context, cfg *config.Config, stderr io.Writer) (*demoHost, error) {
	logger := hclog.New(&hclog.LoggerOptions{Name: "aof2", Level: cfg.HCLogLevel(), Output: stderr})
	reg := prometheus.NewRegistry()
	opts, err := nodeOptions(cfg, reg, logger)
	if err != nil {
		return nil, err
	}
	n, err := node.New(opts)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := n.Start(ctx); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	h := &demoHost{n: n, started: time.Since(t0), served: make(chan error, 1)}
	sopts := cfg.ServerOptions()
	sopts.Token = "" // the demo's clients carry none
	sopts.Gatherer, sopts.Registerer, sopts.Logger = reg, reg, logger.Named("server")
	h.srv, err = server.New(n, sopts)
	if err != nil {
		return nil, errors.Join(err, n.Close(context.Background()))
	}
	l, err := net.Listen("tcp", cfg.Listen.GRPC)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("listen.grpc: %w", err), n.Close(context.Background()))
	}
	h.addr = l.Addr().String()
	go func() { h.served <- h.srv.ServeGRPC(l) }()
	return h, nil
}

// stop drains the client API, then closes the node (store, coordinator,
// plugin).
func (h *demoHost) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := h.srv.Shutdown(ctx)
	if serr := <-h.served; serr != nil {
		err = errors.Join(err, fmt.Errorf("serve: %w", serr))
	}
	return errors.Join(err, h.n.Close(ctx))
}

// demoOut writes the demo's report; the first write error sticks.
type demoOut struct {
	w   io.Writer
	err error
}

func (o *demoOut) printf(format string, a ...any) {
	if o.err == nil {
		_, o.err = fmt.Fprintf(o.w, format, a...)
	}
}

func (o *demoOut) step(n int, title string) { o.printf("\n== %d. %s\n\n", n, title) }

type demo struct {
	o   *demoOptions
	out *demoOut
	c   *client.Client   // for everything but the workload
	cs  []*client.Client // one per workload client
}

func (d *demo) run(ctx context.Context, cfg *config.Config) error {
	o, out := d.o, d.out
	perClient := make([]int, o.clients)
	for i := range perClient {
		perClient[i] = o.records / o.clients
		if i < o.records%o.clients {
			perClient[i]++
		}
	}

	// 1. The first records: one per client, then the table.
	out.step(1, "the first records")
	buf := make([]byte, o.size)
	for i, c := range d.cs {
		if _, err := c.Append(ctx, demoStream, demoPayload(buf, i, 0)); err != nil {
			return fmt.Errorf("client %d record 0: %w", i, err)
		}
	}
	out.printf("each client appended one record; everything is in the active segment, in tier 0:\n\n")
	if err := d.dump(ctx); err != nil {
		return err
	}

	// 2. The workload.
	out.step(2, "the workload")
	out.printf("%d clients append the other %d records, one per call, each call returning once its record is durable…\n",
		o.clients, o.records-o.clients)
	res, err := d.write(ctx, perClient)
	if err != nil {
		return err
	}
	out.printf("durable appends: %v\n", res)

	// 3. Seal, let the coordinator compress and upload.
	out.step(3, "seal, then the coordinator moves the sealed segments")
	info, err := d.c.Seal(ctx, demoStream)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	out.printf("sealed stream %d: %d records in %d segments (%d rollovers)\n", demoStream, info.Records, info.Segments, info.Segments-1)
	out.printf("waiting for tier 2 uploads…\n")
	t0 := time.Now()
	rows, err := d.waitTier2(ctx)
	if err != nil {
		_ = d.dump(ctx)
		return err
	}
	moved := countOf(rows, func(r client.SegmentRow) bool { return r.Sealed && r.Tier2 })
	cold := countOf(rows, func(r client.SegmentRow) bool { return !r.Tier0 })
	out.printf("done after %s: all %d sealed segments are in tier 2, %d have left tier 0, %d have a copy in tier 1:\n\n",
		time.Since(t0).Round(time.Millisecond), moved, cold, countOf(rows, func(r client.SegmentRow) bool { return r.Tier1 }))
	dd, err := d.settle(ctx)
	if err != nil {
		return err
	}
	if err := d.printDump(dd); err != nil {
		return err
	}

	// 4. Read everything back.
	out.step(4, "read everything back")
	rd, err := d.readAll(ctx)
	if err != nil {
		return err
	}
	out.printf("read %d records in %s (%.1f MB/s), hydrating the %d segments not in tier 0 on the way: every payload verified\n",
		rd.records, rd.elapsed.Round(time.Millisecond), float64(rd.records)*float64(o.size)/rd.elapsed.Seconds()/1e6, cold)

	// 5. A cold read of the oldest segment the read-back pushed out again.
	out.step(5, "a cold read")
	cr, err := d.coldRead(ctx)
	if err != nil {
		return err
	}
	out.printf("the read-back pushed the oldest segments out of tier 0 again (its budget is %s);\n", dump.Bytes(cfg.Tier0.MaxBytes))
	out.printf("cold read of segment %d from tier %d: %d records in %.1f ms (hydrated), payloads verified\n",
		cr.seg, cr.tier, cr.records, float64(cr.elapsed.Microseconds())/1000)
	if dd, err = d.settle(ctx); err != nil {
		return err
	}
	if g, ok := segmentOf(dd, cr.seg); !ok || !g.Tier0 {
		return fmt.Errorf("segment %d is not in tier 0 after the cold read", cr.seg)
	}
	if g, ok := segmentOf(dd, cr.seg+1); ok && g.Tier0 && cr.nextCold {
		out.printf("segment %d is back in tier 0, and segment %d too: a read that hydrates fetches the next segment ahead:\n\n", cr.seg, cr.seg+1)
	} else {
		out.printf("segment %d is back in tier 0:\n\n", cr.seg)
	}
	if err := d.printDump(dd); err != nil {
		return err
	}

	out.step(6, "summary")
	out.printf("  wrote      %d records (%s) from %d clients across %d segments, every append durable\n",
		o.records, dump.Bytes(int64(o.records)*int64(o.size)), o.clients, len(rows))
	out.printf("  appends    %.0f records/s, %.1f MB/s, latency p50 %v p99 %v\n", float64(res.Records)/res.Elapsed.Seconds(),
		float64(res.Bytes)/res.Elapsed.Seconds()/1e6, res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond))
	out.printf("  tiering    all %d sealed segments uploaded to tier 2; %d left tier 0\n", moved, cold)
	out.printf("  cold read  segment %d from tier %d in %.1f ms\n", cr.seg, cr.tier, float64(cr.elapsed.Microseconds())/1000)
	out.printf("  verified   %d records read back: every payload verified\n\n", rd.records)
	return out.err
}

// dump prints the host's tier table, fetched through the client API.
func (d *demo) dump(ctx context.Context) error {
	dd, err := d.fetchDump(ctx)
	if err != nil {
		return err
	}
	return d.printDump(dd)
}

func (d *demo) fetchDump(ctx context.Context) (*dump.Dump, error) {
	b, err := d.c.Dump(ctx)
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	var dd dump.Dump
	if err := json.Unmarshal(b, &dd); err != nil {
		return nil, fmt.Errorf("decode the host's dump: %w", err)
	}
	return &dd, nil
}

// settle waits (briefly) until the host is idle — no tiering job queued or
// running and no hydration in flight, over a window longer than the
// coordinator's scan interval — so the table it returns is a resting
// picture and stopping the host cancels nothing.
func (d *demo) settle(ctx context.Context) (*dump.Dump, error) {
	deadline := time.Now().Add(settleLimit)
	var idleSince time.Time
	for {
		dd, err := d.fetchDump(ctx)
		if err != nil {
			return nil, err
		}
		busy := 0
		for _, n := range dd.Queues {
			busy += n
		}
		if dd.Hydration != nil {
			busy += dd.Hydration.InFlight
		}
		now := time.Now()
		switch {
		case busy > 0:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = now
		case now.Sub(idleSince) >= settleQuiet:
			return dd, nil
		}
		if now.After(deadline) {
			return dd, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// settleLimit bounds settle: the demo goes on with a busy host after it.
// settleQuiet is the idle window, three scan intervals of the demo host.
const (
	settleLimit = 10 * time.Second
	settleQuiet = 150 * time.Millisecond
)

// segmentOf finds segment seg of the demo stream in dd.
func segmentOf(dd *dump.Dump, seg client.SegmentID) (dump.Segment, bool) {
	for _, s := range dd.Streams {
		if s.ID != uint64(demoStream) {
			continue
		}
		for _, g := range s.Segments {
			if g.ID == uint64(seg) {
				return g, true
			}
		}
	}
	return dump.Segment{}, false
}

// printDump prints the tier table, indented.
func (d *demo) printDump(dd *dump.Dump) error {
	var tb bytes.Buffer
	if err := dd.WriteTable(&tb); err != nil {
		return err
	}
	for line := range strings.Lines(tb.String()) {
		if strings.TrimSpace(line) == "" {
			d.out.printf("\n")
			continue
		}
		d.out.printf("    %s", line)
	}
	return d.out.err
}

// write appends records 1.. of every client concurrently, one record per
// durable append, and measures them.
func (d *demo) write(ctx context.Context, perClient []int) (benchResult, error) {
	lat := make([][]time.Duration, len(d.cs))
	errs := make([]error, len(d.cs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range d.cs {
		wg.Go(func() {
			buf := make([]byte, d.o.size)
			for seq := 1; seq < perClient[i]; seq++ {
				t0 := time.Now()
				if _, err := c.Append(ctx, demoStream, demoPayload(buf, i, seq)); err != nil {
					errs[i] = fmt.Errorf("client %d record %d: %w", i, seq, err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	res := benchResult{Elapsed: time.Since(start)}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return res, errors.New("no append to measure: raise -records")
	}
	slices.Sort(all)
	res.Records = int64(len(all))
	res.Bytes = res.Records * int64(d.o.size)
	res.P50, res.P99 = all[len(all)/2], all[len(all)*99/100]
	return res, nil
}

// waitTier2 waits until every sealed segment is in tier 2 and at least one
// has left tier 0, and returns the stream's segments then.
func (d *demo) waitTier2(ctx context.Context) ([]client.SegmentRow, error) {
	deadline := time.Now().Add(d.o.wait)
	for {
		rows, err := d.segments(ctx)
		if err != nil {
			return nil, err
		}
		sealed := countOf(rows, func(r client.SegmentRow) bool { return r.Sealed })
		up := countOf(rows, func(r client.SegmentRow) bool { return r.Sealed && r.Tier2 })
		gone := countOf(rows, func(r client.SegmentRow) bool { return !r.Tier0 })
		if sealed > 0 && up == sealed && gone > 0 {
			return rows, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("tier 2 uploads did not finish within %v (-wait): %d of %d sealed segments in tier 2, %d left tier 0", d.o.wait, up, sealed, gone)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *demo) segments(ctx context.Context) ([]client.SegmentRow, error) {
	id := demoStream
	rows, err := d.c.Segments(ctx, client.SegmentFilter{Stream: &id})
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	slices.SortFunc(rows, func(a, b client.SegmentRow) int { return cmp.Compare(a.Segment, b.Segment) })
	return rows, nil
}

type readBack struct {
	records int
	elapsed time.Duration
}

// readAll reads the stream from the start through the client and checks
// that every client's records arrive complete, intact and in its order.
func (d *demo) readAll(ctx context.Context) (readBack, error) {
	start := time.Now()
	next := make([]int, d.o.clients)
	want := make([]byte, d.o.size)
	pos, n := client.AtStart(), 0
	for {
		res, err := d.c.Read(ctx, demoStream, pos, 1000)
		if err != nil {
			return readBack{}, fmt.Errorf("read at record %d: %w", n, err)
		}
		for _, r := range res.Records {
			w, seq, err := d.check(r, want)
			if err != nil {
				return readBack{}, err
			}
			if seq != next[w] {
				return readBack{}, fmt.Errorf("record %v: client %d record %d arrived where its record %d was expected", r.ID, w, seq, next[w])
			}
			next[w]++
			n++
		}
		if res.End {
			break
		}
		pos = res.Next
	}
	if n != d.o.records {
		return readBack{}, fmt.Errorf("read %d records back, appended %d", n, d.o.records)
	}
	return readBack{records: n, elapsed: time.Since(start)}, nil
}

type coldRead struct {
	seg     client.SegmentID
	tier    int
	records int
	elapsed time.Duration
	// nextCold: the following segment was not in tier 0 before the read.
	nextCold bool
}

// coldRead reads the first records of the oldest segment not in tier 0
// and times it.
func (d *demo) coldRead(ctx context.Context) (coldRead, error) {
	rows, err := d.segments(ctx)
	if err != nil {
		return coldRead{}, err
	}
	i := slices.IndexFunc(rows, func(r client.SegmentRow) bool { return !r.Tier0 && r.Records > 0 })
	if i < 0 {
		return coldRead{}, errors.New("every segment is in tier 0: nothing to read cold")
	}
	row := rows[i]
	cr := coldRead{seg: row.Segment, tier: 2, nextCold: i+1 < len(rows) && !rows[i+1].Tier0}
	if row.Tier1 {
		cr.tier = 1
	}
	t0 := time.Now()
	res, err := d.c.Read(ctx, demoStream, client.AtOrdinal(row.BaseRecord), int(min(row.Records, 100)))
	cr.elapsed = time.Since(t0)
	if err != nil {
		return cr, fmt.Errorf("cold read of segment %d: %w", row.Segment, err)
	}
	want := make([]byte, d.o.size)
	for _, r := range res.Records {
		if _, _, err := d.check(r, want); err != nil {
			return cr, err
		}
	}
	if cr.records = len(res.Records); cr.records == 0 {
		return cr, fmt.Errorf("cold read of segment %d returned no records", row.Segment)
	}
	return cr, nil
}

// check verifies that r is a demo payload, byte for byte, and returns its
// client and sequence number.
func (d *demo) check(r client.Record, want []byte) (int, int, error) {
	p := r.Payload
	if len(p) != d.o.size {
		return 0, 0, fmt.Errorf("record %v: %d bytes, appended %d", r.ID, len(p), d.o.size)
	}
	w, seq := int(binary.LittleEndian.Uint32(p)), int(binary.LittleEndian.Uint32(p[4:]))
	if w >= d.o.clients || !bytes.Equal(p, demoPayload(want, w, seq)) {
		return 0, 0, fmt.Errorf("record %v: the payload is not what was appended", r.ID)
	}
	return w, seq, nil
}

// demoPayload fills buf with record seq of client w: the header, then
// bytes derived from (w, seq) — half pseudo-random, half text, so zstd has
// something to do — that the read-back regenerates and compares.
func demoPayload(buf []byte, w, seq int) []byte {
	binary.LittleEndian.PutUint32(buf[0:], uint32(w))
	binary.LittleEndian.PutUint32(buf[4:], uint32(seq))
	body := buf[demoHeader:]
	half := len(body) / 2
	x := uint64(w)<<32 | uint64(seq)
	for i := 0; i < half; i += 8 {
		x += 0x9e3779b97f4a7c15 // splitmix64
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], z^z>>31)
		copy(body[i:half], b[:])
	}
	text := fmt.Appendf(nil, "client %d record %d; ", w, seq)
	for i := half; i < len(body); i += len(text) {
		copy(body[i:], text)
	}
	binary.LittleEndian.PutUint64(buf[8:], checksum.Sum64(body))
	return buf
}

func countOf[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}
