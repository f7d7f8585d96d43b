package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testseed"
)

// TestTakeoverDrill is issue 13's fencing evidence against the real
// binaries, 20 times with random timing (AOF2_TAKEOVER_DRILL_RUNS for
// more): host A writes two streams with durable appends while a read
// replica follows the prefix; at a random moment node B takes the prefix
// over and restores it. A is fenced within its next uploads (its appends
// end FENCED), B serves and appends after A's history, and no tier-2
// object is ever replaced (the fs plugin's files keep their inode, size
// and time). The replica serves every record B acknowledged and never a
// record that differs from the one acknowledged with its id; a third
// node restoring the prefix sees the same history (every record it
// serves, the replica serves identically; every record A acknowledged is
// there unless restore reports its segment lost).
func TestTakeoverDrill(t *testing.T) {
	bin := hostBinaries(t)
	runs := 20
	if v, err := strconv.Atoi(os.Getenv("AOF2_TAKEOVER_DRILL_RUNS")); err == nil && v > 0 {
		runs = v
	}
	seed := testseed.From(t, "AOF2_TAKEOVER_DRILL_SEED")
	rng := rand.New(rand.NewPCG(seed, seed))
	var lostTotal, ackedTotal int
	for run := range runs {
		acked, lost := takeoverDrillRun(t, bin, run, time.Duration(100+rng.IntN(700))*time.Millisecond)
		ackedTotal, lostTotal = ackedTotal+acked, lostTotal+lost
	}
	t.Logf("takeover drill: %d runs; %d records acknowledged by the old writers, %d of them not in the new history (acknowledged after their last upload)",
		runs, ackedTotal, lostTotal)
}

type recKey struct {
	stream client.StreamID
	id     client.RecordID
}

func takeoverDrillRun(t *testing.T, bin string, run int, after time.Duration) (int, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := t.TempDir()
	objects := filepath.Join(root, "objects")
	common := []string{"-tier2-settings", "root=" + objects, "-segment-max-age", "300ms", "-manifest-rotation-period", "20ms"}
	env := []string{"AOF2_TIER2_SETTINGS_ROOT=" + objects}
	streams := []client.StreamID{1, 2}

	a := startHost(t, bin, nil, append(defaultHostArgs(filepath.Join(root, "a")), common...)...)
	a.waitReady()
	ac := a.dial(ctx)
	r := startHost(t, bin, nil, append(append(defaultHostArgs(filepath.Join(root, "r")), common...),
		"-role", "replica", "-replica-poll-interval", "50ms", "-replica-list-interval", "200ms")...)
	r.waitReady()
	rc := r.dial(ctx)

	var mu sync.Mutex
	byA := map[recKey][]byte{}
	ends := make(chan error, len(streams))
	for _, s := range streams {
		go func() {
			for i := 0; ; i++ {
				batch := make([][]byte, 5)
				for j := range batch {
					batch[j] = fmt.Appendf(nil, "run %d stream %d record %d by A", run, s, i*5+j)
				}
				ids, err := ac.Append(ctx, s, batch...)
				if err != nil {
					ends <- err
					return
				}
				mu.Lock()
				for j, id := range ids {
					byA[recKey{s, id}] = batch[j]
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(after)
	bDir := filepath.Join(root, "b")
	code, stdout, stderr := runHostCmd(t, ctx, bin, env, "takeover", "-data-dir", bDir)
	require.Zero(t, code, "run %d: takeover: %s\n%s", run, stdout, stderr)
	code, stdout, stderr = runHostCmd(t, ctx, bin, env, "restore", "-data-dir", bDir)
	require.Zero(t, code, "run %d: restore: %s\n%s", run, stdout, stderr)
	for range streams {
		// A is fenced at its next tier-2 write: max_age seals and uploads
		// within a second, so its appends end FENCED.
		require.ErrorIs(t, <-ends, types.ErrFenced, "run %d: A's appends end fenced", run)
	}
	a.stop()
	stamps := objectStamps(t, objects)

	b := startHost(t, bin, nil, append(defaultHostArgs(bDir), common...)...)
	b.waitReady()
	bc := b.dial(ctx)
	byB := map[recKey][]byte{}
	for _, s := range streams {
		for i := range 20 {
			p := fmt.Appendf(nil, "run %d stream %d record %d by B", run, s, i)
			ids, err := bc.Append(ctx, s, p)
			require.NoError(t, err, "run %d", run)
			byB[recKey{s, ids[0]}] = p
			for k := range byA {
				if k.stream == s {
					require.Greater(t, ids[0].Segment(), k.id.Segment(), "run %d: B never takes an id A used", run)
				}
			}
		}
		_, err := bc.Seal(ctx, s)
		require.NoError(t, err)
	}
	// The replica follows B's records, after A's history.
	for k, p := range byB {
		var got []byte
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if res, err := rc.Read(ctx, k.stream, client.AtID(k.id), 1); err == nil && len(res.Records) == 1 {
				got = res.Records[0].Payload
				break
			}
			require.False(t, time.Now().After(deadline), "run %d: the replica serves B's stream %d record %s within a minute\n%s", run, k.stream, k.id, r.stderr)
		}
		require.Equal(t, p, got, "run %d: stream %d record %s", run, k.stream, k.id)
	}
	b.stop()
	checkStamps(t, objects, stamps, run)

	cDir := filepath.Join(root, "c")
	code, stdout, stderr = runHostCmd(t, ctx, bin, env, "takeover", "-data-dir", cDir)
	require.Zero(t, code, "run %d: takeover: %s\n%s", run, stdout, stderr)
	code, stdout, stderr = runHostCmd(t, ctx, bin, env, "restore", "-data-dir", cDir, "-json")
	require.Zero(t, code, "run %d: restore: %s\n%s", run, stdout, stderr)
	var rep restore.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	lostSegs := map[client.StreamID][]types.SegmentID{}
	for _, sr := range rep.Streams {
		lostSegs[sr.Stream] = sr.Lost
	}
	c := startHost(t, bin, nil, append(defaultHostArgs(cDir), common...)...)
	c.waitReady()
	cc := c.dial(ctx)
	lost := 0
	check := func(k recKey, p []byte, byOld bool) {
		res, err := cc.Read(ctx, k.stream, client.AtID(k.id), 1)
		if byOld && slices.Contains(lostSegs[k.stream], k.id.Segment()) {
			require.Error(t, err, "run %d: stream %d record %s is in a segment restore reports lost", run, k.stream, k.id)
			lost++
			return
		}
		require.NoError(t, err, "run %d: stream %d record %s is in the history", run, k.stream, k.id)
		require.Equal(t, p, res.Records[0].Payload, "run %d: stream %d record %s", run, k.stream, k.id)
		rr, err := rc.Read(ctx, k.stream, client.AtID(k.id), 1)
		require.NoError(t, err, "run %d: the replica serves stream %d record %s as the restore does", run, k.stream, k.id)
		require.Equal(t, p, rr.Records[0].Payload, "run %d: stream %d record %s on the replica", run, k.stream, k.id)
	}
	for k, p := range byA {
		check(k, p, true)
	}
	for k, p := range byB {
		check(k, p, false)
	}
	// Whatever else the replica serves was acknowledged with its id.
	for _, s := range streams {
		got, err := readAll(ctx, rc, s)
		if err != nil && !errors.Is(err, types.ErrCorrupt) {
			require.NoError(t, err)
		}
		for _, rec := range got {
			k := recKey{s, rec.ID}
			p, ok := byA[k]
			if !ok {
				p, ok = byB[k]
			}
			require.True(t, ok, "run %d: the replica serves stream %d record %s, which no writer acknowledged", run, s, rec.ID)
			require.Equal(t, p, rec.Payload, "run %d: stream %d record %s on the replica", run, s, rec.ID)
		}
	}
	c.stop()
	r.stop()
	checkStamps(t, objects, stamps, run)
	return len(byA), lost
}

// objectStamps maps every tier-2 object file of the fs plugin
// (objects/a.d/b.o for key a/b; the writer record aside: replaced on
// purpose) to its inode, size and time.
func objectStamps(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	writer := filepath.Join(root, "objects", "_aof2.d", "writer.o")
	require.NoError(t, filepath.WalkDir(filepath.Join(root, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == writer {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		ino := uint64(0)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		out[p] = fmt.Sprintf("%d/%d/%d", ino, fi.Size(), fi.ModTime().UnixNano())
		return nil
	}))
	return out
}

// checkStamps: no object file of before was replaced (deleted ones, by
// retention or the tier-2 manifest trim, are gone, not rewritten).
func checkStamps(t *testing.T, root string, before map[string]string, run int) {
	t.Helper()
	now := objectStamps(t, root)
	for p, st := range before {
		if got, ok := now[p]; ok {
			require.Equal(t, st, got, "run %d: %s was written once", run, p)
		}
	}
	require.NotEmpty(t, before)
}
