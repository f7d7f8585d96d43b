package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testscale"
	"github.com/aof2/aof2/internal/testseed"
)

// The kill -9 test re-executes the test binary as a child that appends to a
// real directory and prints every acknowledgement; the parent SIGKILLs it
// at a random moment, reopens the store and checks that every acknowledged
// record is there, in order and intact. Page-cache contents survive a kill,
// so this exercises recovery from every point of the engine's own protocol
// (mid-append, mid-seal, mid-pointer-replace, mid-preparation), not power
// loss; TestPowerLoss covers that.

const (
	killChildEnv = "AOF2_KILL_CHILD_DIR"
	killConfEnv  = "AOF2_KILL_CHILD_CONF"
	killStream   = 1
)

// killPayload is the deterministic payload of the seq-th record, so the
// parent can verify content without hearing about unacknowledged appends.
func killPayload(seq int) []byte {
	rng := rand.New(rand.NewPCG(uint64(seq), 0x6b696c6c))
	n := 1 + rng.IntN(400)
	if rng.IntN(50) == 0 {
		n = 20000 + rng.IntN(100000)
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// killConfig is configuration conf: 0–3 sync the streams' segments
// (always or on an interval, mmap or pwrite), 4–5 make appends durable
// through the node WAL (mmap or pwrite), checkpointed every 256 KiB.
func killConfig(conf int) Config {
	cfg := Config{FS: vfs.OS, SegmentSize: segment.MinCapacity}
	cfg.Sync = []SyncPolicy{SyncAlways, SyncInterval}[conf%2]
	cfg.WriteMode = []segment.WriteMode{segment.WriteMmap, segment.WritePwrite}[(conf/2)%2]
	if conf >= 4 {
		cfg.Sync, cfg.NodeWAL, cfg.WALCheckpointBytes = SyncAlways, true, 256<<10
	}
	return cfg
}

// TestKill9Child is the child half; it does nothing unless re-executed.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("child half of TestKill9")
	}
	conf, _ := strconv.Atoi(os.Getenv(killConfEnv))
	if err := killChild(dir, conf); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(3)
	}
}

func killChild(dir string, conf int) error {
	ctx := context.Background()
	st, err := Open(dir, killConfig(conf))
	if err != nil {
		return err
	}
	s, err := st.Stream(killStream)
	if err != nil {
		return err
	}
	seq, err := countRecords(s)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "start %d\n", seq)
	_ = out.Flush()
	rng := rand.New(rand.NewPCG(uint64(seq), uint64(conf)))
	for {
		var last RecordID
		for range 1 + rng.IntN(20) {
			if last, err = s.AppendCtx(ctx, killPayload(seq), AppendOptions{}); err != nil {
				return err
			}
			seq++
		}
		if rng.IntN(30) == 0 {
			err = s.Seal(ctx)
		} else {
			err = s.Flush(ctx, last)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ack %d\n", seq)
		_ = out.Flush()
	}
}

func TestKill9(t *testing.T) { kill9(t, func(rng *rand.Rand) int { return rng.IntN(4) }) }

// TestKill9NodeWAL is TestKill9 with appends durable through the node WAL.
func TestKill9NodeWAL(t *testing.T) { kill9(t, func(rng *rand.Rand) int { return 4 + rng.IntN(2) }) }

func kill9(t *testing.T, pick func(*rand.Rand) int) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	cycles := testscale.Count("AOF2_KILL_CYCLES", 100, 0)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(testseed.From(t, "AOF2_KILL_SEED"), 9))
	acked, kills := 0, 0
	for cycle := range cycles {
		conf := pick(rng)
		delay := time.Duration(rng.IntN(300)) * time.Millisecond
		got, killed, err := runKillChild(t, dir, conf, delay)
		require.NoError(t, err, "cycle %d (conf %d, kill after %s)", cycle, conf, delay)
		acked = max(acked, got)
		if killed {
			kills++
		}
		n, err := verifyKill(dir, conf, acked)
		require.NoError(t, err, "cycle %d (conf %d, kill after %s): %d acknowledged", cycle, conf, delay, acked)
		acked = min(acked, n)
	}
	t.Logf("%d cycles, %d killed mid-run, %d records acknowledged", cycles, kills, acked)
}

// runKillChild runs one child and kills it after delay. It returns the
// highest acknowledged record count the child printed.
func runKillChild(t *testing.T, dir string, conf int, delay time.Duration) (acked int, killed bool, err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killConfEnv+"="+strconv.Itoa(conf))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, false, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, false, err
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var timer <-chan time.Time
	var childErr string
	deadline := time.After(time.Minute)
	for lines != nil {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			switch f := strings.Fields(line); {
			case len(f) == 2 && f[0] == "start":
				timer = time.After(delay)
			case len(f) == 2 && f[0] == "ack":
				n, _ := strconv.Atoi(f[1])
				acked = max(acked, n)
			case len(f) > 0 && f[0] == "error":
				childErr = line
			}
		case <-timer:
			// Acks printed before the kill lands still count: keep draining.
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed, timer = true, nil
		case <-deadline:
			_ = cmd.Process.Kill()
			childErr = "child hung"
		}
	}
	werr := cmd.Wait()
	if childErr != "" {
		return acked, killed, errors.New(childErr)
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
		return acked, true, nil
	}
	return acked, killed, fmt.Errorf("child ended without being killed: %v", werr)
}

// verifyKill opens the store like a restarted process and checks that the
// stream holds at least acked records, each the one appended at its
// position. It returns the record count.
func verifyKill(dir string, conf, acked int) (int, error) {
	st, err := Open(dir, killConfig(conf))
	if err != nil {
		return 0, fmt.Errorf("reopen: %w", err)
	}
	n, err := checkKillRecords(st)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err == nil && n < acked {
		err = fmt.Errorf("lost acknowledged records: %d recovered, %d acknowledged", n, acked)
	}
	return n, err
}

func checkKillRecords(st *Store) (int, error) {
	s, err := st.Stream(killStream)
	if err != nil {
		return 0, err
	}
	r, err := s.NewReader(AtStart())
	if err != nil {
		return 0, err
	}
	n := 0
	for ; ; n++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("record %d: %w", n, err)
		}
		if want := killPayload(n); string(rec.Payload) != string(want) {
			return n, fmt.Errorf("record %d (%s): %d bytes differ from the %d appended", n, rec.ID, len(rec.Payload), len(want))
		}
	}
	return n, nil
}
