package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core/types"
)

// replicaLag reads the largest aof_replica_lag_seconds of h's streams.
func replicaLag(h *hostProc) (float64, bool) {
	vs, _ := scrape(h, "aof_replica_lag_seconds")
	if len(vs) == 0 {
		return 0, false
	}
	return slices.Max(vs), true
}

// readAll reads every record of stream s from c, from the start.
func readAll(ctx context.Context, c *client.Client, s client.StreamID) ([]client.Record, error) {
	var out []client.Record
	pos := client.AtStart()
	for {
		res, err := c.Read(ctx, s, pos, 500)
		if err != nil {
			return out, err
		}
		out = append(out, res.Records...)
		if res.End || len(res.Records) == 0 {
			return out, nil
		}
		pos = res.Next
	}
}

// TestReplicaFollowsAndPromotes is issue 13's replica evidence against
// the real binaries: a replica host (role = "replica") follows a writer
// host through the fs plugin's objects while concurrent durable writers
// load it (streams created after the replica started included). The
// replica serves every acknowledged record byte-exact with its id and
// never a record that differs; it refuses appends with REPLICA; a record
// acknowledged by the writer becomes readable on the replica within
// about segment.max_age + the poll interval (reported). The writer is
// then SIGKILLed and the replica promoted (promote, then serve as the
// writer): every record that reached tier 2 reads back, and appends
// continue in segments no acknowledged record used.
func TestReplicaFollowsAndPromotes(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root := t.TempDir()
	wData, rData, objects := filepath.Join(root, "writer"), filepath.Join(root, "replica"), filepath.Join(root, "objects")
	const maxAge, poll = time.Second, 100 * time.Millisecond
	common := []string{"-tier2-settings", "root=" + objects, "-segment-max-age", maxAge.String(), "-manifest-rotation-period", "20ms"}
	env := []string{"AOF2_TIER2_SETTINGS_ROOT=" + objects}

	w := startHost(t, bin, nil, append(defaultHostArgs(wData), common...)...)
	w.waitReady()
	wc := w.dial(ctx)
	first := drillWrite(t, ctx, wc, []client.StreamID{1}, 300*time.Millisecond)

	replicaArgs := append(append(defaultHostArgs(rData), common...), "-role", "replica",
		"-replica-poll-interval", poll.String(), "-replica-list-interval", "300ms")
	r := startHost(t, bin, nil, replicaArgs...)
	r.waitReady()
	rc := r.dial(ctx)

	// While the writers run: a probe appends a record every 200 ms and
	// times how long the replica takes to serve it; the lag metric is
	// sampled.
	var probeMu sync.Mutex
	var probeMax time.Duration
	var lagMax float64
	stop := make(chan struct{})
	var probes sync.WaitGroup
	probes.Add(1)
	go func() {
		defer probes.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if lag, ok := replicaLag(r); ok {
				probeMu.Lock()
				lagMax = max(lagMax, lag)
				probeMu.Unlock()
			}
			if i%5 != 0 {
				continue
			}
			ids, err := wc.Append(ctx, 9, fmt.Appendf(nil, "probe %d", i))
			if err != nil {
				t.Errorf("probe append: %v", err)
				return
			}
			acked := time.Now()
			deadline := acked.Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if res, err := rc.Read(ctx, 9, client.AtID(ids[0]), 1); err == nil && len(res.Records) == 1 {
					probeMu.Lock()
					probeMax = max(probeMax, time.Since(acked))
					probeMu.Unlock()
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	records := append(first, drillWrite(t, ctx, wc, []client.StreamID{1, 2, 3}, 3*time.Second)...)
	close(stop)
	probes.Wait()

	// Every acknowledged record: served by the replica once uploaded
	// (segment.max_age seals the last ones), byte-exact with its id.
	type key struct {
		stream client.StreamID
		id     client.RecordID
	}
	want := map[key][]byte{}
	perStream := map[client.StreamID]int{}
	for _, a := range records {
		want[key{a.stream, a.id}] = a.payload
		perStream[a.stream]++
	}
	for s, n := range perStream {
		var got []client.Record
		var err error
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			got, err = readAll(ctx, rc, s)
			if err == nil && len(got) >= n {
				break
			}
			if time.Now().After(deadline) {
				last := "none"
				if len(got) > 0 {
					last = got[len(got)-1].ID.String()
				}
				segs, _ := filepath.Glob(filepath.Join(rData, "streams", fmt.Sprint(s), "segments", "*"))
				wsegs, _ := filepath.Glob(filepath.Join(wData, "streams", fmt.Sprint(s), "segments", "*"))
				var objs []string
				_ = filepath.WalkDir(objects, func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() && strings.Contains(p, fmt.Sprintf("streams.d/%d.d", s)) {
						objs = append(objs, strings.TrimPrefix(p, objects))
					}
					return nil
				})
				t.Logf("stream %d's last objects in tier 2: %v", s, objs[max(len(objs)-6, 0):])
				t.Fatalf("waited 1m for the replica to serve stream %d's %d records: has %d up to %s, %v\nreplica %v\nwriter %v\n%s", s, n, len(got), last, err, segs[max(len(segs)-3, 0):], wsegs[max(len(wsegs)-5, 0):], r.stderr)
			}
		}
		for _, rec := range got {
			p, ok := want[key{s, rec.ID}]
			require.True(t, ok, "stream %d: the replica serves record %s the writer never acknowledged", s, rec.ID)
			require.Equal(t, p, rec.Payload, "stream %d record %s", s, rec.ID)
		}
		require.Len(t, got, n, "stream %d", s)
	}
	_, err := rc.Append(ctx, 1, []byte("to the replica"))
	require.ErrorIs(t, err, types.ErrReplica)
	require.Contains(t, err.Error(), "epoch 1", "the refusal names the writer")

	// The writer is lost; the replica is promoted.
	w.kill()
	r.stop()
	code, _, stderr := runHostCmd(t, ctx, bin, nil, append([]string{"serve", "-takeover"}, append(defaultHostArgs(rData), common...)...)...)
	require.NotZero(t, code, "a replica's data directory never serves as the writer, -takeover or not")
	require.Contains(t, stderr, "read replica's data directory")
	code, stdout, stderr := runHostCmd(t, ctx, bin, env, "promote", "-data-dir", rData)
	require.Zero(t, code, "promote: %s\n%s", stdout, stderr)
	require.Contains(t, stdout, "epoch 2")
	p := startHost(t, bin, nil, append(defaultHostArgs(rData), common...)...)
	p.waitReady()
	pc := p.dial(ctx)
	for _, a := range records {
		res, err := pc.Read(ctx, a.stream, client.AtID(a.id), 1)
		require.NoError(t, err, "stream %d record %s", a.stream, a.id)
		require.Equal(t, a.payload, res.Records[0].Payload)
	}
	for s := range perStream {
		ids, err := pc.Append(ctx, s, []byte("after the promotion"))
		require.NoError(t, err)
		for _, a := range records {
			if a.stream == s {
				require.Greater(t, ids[0].Segment(), a.id.Segment(), "no id is handed out twice")
			}
		}
	}
	p.stop()
	code, _, stderr = runHostCmd(t, ctx, bin, env, "promote", "-data-dir", rData)
	require.Equal(t, exitUsage, code, "promote refuses a writer's data directory\n%s", stderr)
	require.Contains(t, stderr, "is not a read replica's data directory")
	t.Logf("replica: %d records by 3 writers over 3 s; a record acknowledged by the writer was served by the replica after at most %s (segment.max_age %s, poll %s); largest aof_replica_lag_seconds seen %.2f s",
		len(records), probeMax.Round(time.Millisecond), maxAge, poll, lagMax)
	require.False(t, errors.Is(ctx.Err(), context.DeadlineExceeded))
}

// TestServeTakeover: a host whose prefix another node took over is
// fenced at its next tier-2 write (appends FENCED, reads go on) and,
// restarted, refused (exit 5); `serve -takeover` claims the prefix back at
// the next epoch and serves. On an empty data directory over a prefix
// with streams, `serve -takeover` is refused before it claims anything.
func TestServeTakeover(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := t.TempDir()
	objects := filepath.Join(root, "objects")
	env := []string{"AOF2_TIER2_SETTINGS_ROOT=" + objects}
	aArgs := append(defaultHostArgs(filepath.Join(root, "a")), "-tier2-settings", "root="+objects)
	a := startHost(t, bin, nil, aArgs...)
	a.waitReady()
	ac := a.dial(ctx)
	ids, err := ac.Append(ctx, 1, []byte("before"))
	require.NoError(t, err)

	// An empty node cannot take over with serve: it would need a restore.
	bArgs := append(defaultHostArgs(filepath.Join(root, "b")), "-tier2-settings", "root="+objects)
	code, _, stderr := runHostCmd(t, ctx, bin, nil, append([]string{"serve", "-takeover"}, bArgs...)...)
	require.NotZero(t, code)
	require.Contains(t, stderr, "the writer was left alone")
	code, _, stderr = runHostCmd(t, ctx, bin, nil, append([]string{"serve", "-takeover", "-role", "replica"}, bArgs...)...)
	require.Equal(t, exitUsage, code, "-takeover with role = replica is a usage error\n%s", stderr)
	_, err = ac.Seal(ctx, 1)
	require.NoError(t, err, "the writer was not fenced")

	// Another node takes the prefix over: a's next tier-2 write fences it.
	code, stdout, stderr := runHostCmd(t, ctx, bin, env, "takeover", "-data-dir", filepath.Join(root, "c"))
	require.Zero(t, code, "%s\n%s", stdout, stderr)
	require.Contains(t, stdout, "epoch 2")
	_, err = ac.Append(ctx, 1, []byte("sealed by the next seal"))
	require.NoError(t, err)
	var appendErr error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, _ = ac.Seal(ctx, 1)
		if _, appendErr = ac.Append(ctx, 1, []byte("after")); errors.Is(appendErr, types.ErrFenced) {
			break
		}
	}
	require.ErrorIs(t, appendErr, types.ErrFenced)
	res, err := ac.Read(ctx, 1, client.AtID(ids[0]), 1)
	require.NoError(t, err, "reads go on")
	require.Equal(t, []byte("before"), res.Records[0].Payload)
	a.stop()

	code, _, stderr = runHostCmd(t, ctx, bin, nil, append([]string{"serve"}, aArgs...)...)
	require.Equal(t, exitClaimed, code, "c holds the prefix\n%s", stderr)
	a = startHost(t, bin, nil, append([]string{"-takeover"}, aArgs...)...)
	a.waitReady()
	ac = a.dial(ctx)
	_, err = ac.Append(ctx, 1, []byte("writer again"))
	require.NoError(t, err)
	a.stop()
}
