package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Durable appends spread over many streams: 64 appenders, each on a stream
// of its own, one durable 256 B record at a time. The engine syncs each
// stream's segment file on its own, so the disk sees one flush per stream
// per round. Beside it, the physical designs of making records durable
// across many files that the issue asks to compare (docs/adr-write-path.md,
// "Group commit across streams"):
//
//   - per-file: each appender writes its own file and fdatasyncs it (what
//     the engine does, without its costs);
//   - syncfs: each appender writes its own file; one committer makes every
//     waiting write durable with a single syncfs(2) of the file system;
//   - journal: every appender's frame goes to one shared file, and one
//     committer fdatasyncs it for everyone waiting (a per-node journal, the
//     segments then written behind it without syncs of their own).
//
// And for reference the engine's one-stream figure: 64 appenders on one
// stream (BenchmarkW4DurableConcurrency/appenders=64).

const crossStreams = 64

func BenchmarkCrossStreamDurable(b *testing.B) {
	const per = 200
	for _, eng := range []struct {
		name string
		cfg  Config
	}{{"aof2-64-streams", Config{Sync: SyncAlways}}, {"aof2-64-streams-node-wal", Config{Sync: SyncAlways, NodeWAL: true}}} {
		benchEngineCrossStream(b, eng.name, eng.cfg, per)
	}
	for _, design := range []struct {
		name string
		open func(dir string) (crossDesign, error)
	}{{"per-file-fdatasync", openPerFile}, {"syncfs", openSyncfs}, {"journal", openJournal}} {
		b.Run(design.name, func(b *testing.B) {
			settle(b)
			for range b.N {
				b.StopTimer()
				d, err := design.open(benchDir(b))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				lat := runAppenders(b, crossStreams, per, d.append)
				b.StopTimer()
				if err := d.close(); err != nil {
					b.Fatal(err)
				}
				reportLatency(b, lat)
				b.StartTimer()
			}
			reportRate(b, crossStreams*per, crossStreams*per*256)
		})
	}
}

// runAppenders runs n appenders, each appending per records through
// appendOne(its index, payload), and returns every append's latency.
func runAppenders(b *testing.B, n, per int, appendOne func(g int, p []byte) error) []time.Duration {
	lat := make([][]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			p := benchPayload(256)
			for range per {
				t0 := time.Now()
				if err := appendOne(g, p); err != nil {
					errs <- err
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return all
}

// crossDesign is one way of making appends to many files durable.
type crossDesign interface {
	append(g int, p []byte) error // durable on return
	close() error
}

// frame is a plain log's frame: length, CRC-32C, payload.
func frame(p []byte) []byte {
	f := make([]byte, 8, 8+len(p))
	binary.LittleEndian.PutUint32(f[0:], uint32(len(p)))
	binary.LittleEndian.PutUint32(f[4:], crc32cSum(p))
	return append(f, p...)
}

// crossFiles are one file per appender, written at their own offsets.
type crossFiles struct {
	files []*os.File
	offs  []int64 // offs[g] is written by appender g only
}

func openCrossFiles(dir string) (crossFiles, error) {
	c := crossFiles{files: make([]*os.File, crossStreams), offs: make([]int64, crossStreams)}
	for i := range c.files {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("stream-%02d.log", i)))
		if err != nil {
			return c, err
		}
		c.files[i] = f
	}
	return c, unix.Fsync(int(c.files[0].Fd())) // and the directory entries with it on ext4
}

func (c crossFiles) write(g int, p []byte) error {
	f := frame(p)
	if _, err := c.files[g].WriteAt(f, c.offs[g]); err != nil {
		return err
	}
	c.offs[g] += int64(len(f))
	return nil
}

func (c crossFiles) close() error {
	for _, f := range c.files {
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

type perFile struct{ crossFiles }

func openPerFile(dir string) (crossDesign, error) {
	c, err := openCrossFiles(dir)
	return perFile{c}, err
}

func (d perFile) append(g int, p []byte) error {
	if err := d.write(g, p); err != nil {
		return err
	}
	return unix.Fdatasync(int(d.files[g].Fd()))
}

// groupCommit makes the writes of every waiter durable with one sync:
// a waiter that arrives while a sync runs waits for the next one, which
// covers everything written before it started.
type groupCommit struct {
	sync func() error

	mu       sync.Mutex
	cond     *sync.Cond
	started  uint64 // syncs started; guarded by mu
	finished uint64 // syncs finished; guarded by mu
	running  bool   // guarded by mu
	err      error  // the last sync's error; guarded by mu
}

func newGroupCommit(syncFn func() error) *groupCommit {
	gc := &groupCommit{sync: syncFn}
	gc.cond = sync.NewCond(&gc.mu)
	return gc
}

// wait returns once a sync that started after the call has finished.
func (gc *groupCommit) wait() error {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	need := gc.started + 1 // a running sync may have missed this write
	for gc.finished < need {
		if !gc.running {
			gc.running = true
			gc.started++
			gc.mu.Unlock()
			err := gc.sync()
			gc.mu.Lock()
			gc.running = false
			gc.finished = gc.started
			gc.err = err
			gc.cond.Broadcast()
			continue
		}
		gc.cond.Wait()
	}
	return gc.err
}

type syncfsDesign struct {
	crossFiles
	gc *groupCommit
}

func openSyncfs(dir string) (crossDesign, error) {
	c, err := openCrossFiles(dir)
	if err != nil {
		return nil, err
	}
	fd := int(c.files[0].Fd())
	return syncfsDesign{c, newGroupCommit(func() error { return unix.Syncfs(fd) })}, nil
}

func (d syncfsDesign) append(g int, p []byte) error {
	if err := d.write(g, p); err != nil {
		return err
	}
	return d.gc.wait()
}

// journal gathers frames in memory; the committer writes what gathered
// with one pwrite and fdatasyncs it for everyone waiting.
type journal struct {
	f *os.File

	mu  sync.Mutex
	buf []byte // frames not written yet; guarded by mu
	at  int64  // where the next write goes; used by the committer only
	gc  *groupCommit
}

func openJournal(dir string) (crossDesign, error) {
	f, err := os.Create(filepath.Join(dir, "journal.log"))
	if err != nil {
		return nil, err
	}
	j := &journal{f: f}
	j.gc = newGroupCommit(j.commit)
	return j, nil
}

func (j *journal) commit() error {
	j.mu.Lock()
	buf := j.buf
	j.buf = nil
	j.mu.Unlock()
	if _, err := j.f.WriteAt(buf, j.at); err != nil {
		return err
	}
	j.at += int64(len(buf))
	return unix.Fdatasync(int(j.f.Fd()))
}

func (j *journal) append(g int, p []byte) error {
	f := frame(p)
	j.mu.Lock()
	j.buf = append(j.buf, f...)
	j.mu.Unlock()
	return j.gc.wait()
}

func (j *journal) close() error { return j.f.Close() }

// benchEngineCrossStream runs the engine's row: crossStreams appenders,
// each on its own stream, one durable record at a time.
func benchEngineCrossStream(b *testing.B, name string, cfg Config, per int) {
	b.Run(name, func(b *testing.B) {
		settle(b)
		for range b.N {
			b.StopTimer()
			st, err := Open(benchDir(b), cfg)
			if err != nil {
				b.Fatal(err)
			}
			streams := make([]*Stream, crossStreams)
			for i := range streams {
				if streams[i], err = st.Stream(StreamID(i + 1)); err != nil {
					b.Fatal(err)
				}
				// A stream's first durable append creates its segment
				// file: not what is measured.
				if _, err := streams[i].AppendDurable(context.Background(), benchPayload(256), AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			lat := runAppenders(b, crossStreams, per, func(g int, p []byte) error {
				_, err := streams[g].AppendDurable(context.Background(), p, AppendOptions{})
				return err
			})
			b.StopTimer()
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
			reportLatency(b, lat)
			b.StartTimer()
		}
		reportRate(b, crossStreams*per, crossStreams*per*256)
	})
}
