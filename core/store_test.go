package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
)

func payloadFor(i int, size int) []byte {
	p := make([]byte, size)
	for j := range p {
		p[j] = byte(i*31 + j)
	}
	copy(p, fmt.Sprintf("rec-%08d", i))
	return p
}

func smallConfig(fsys vfs.FS) Config {
	return Config{FS: fsys, SegmentSize: segment.MinCapacity, Sync: SyncAlways}
}

func readAll(t *testing.T, s *Stream) []Record {
	t.Helper()
	r, err := s.NewReader(AtStart())
	require.NoError(t, err)
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		rec.Payload = append([]byte(nil), rec.Payload...)
		out = append(out, rec)
	}
}

func TestAppendReadReopenAcrossRollovers(t *testing.T) {
	for _, mode := range []segment.WriteMode{segment.WriteMmap, segment.WritePwrite} {
		for fsName, mk := range map[string]func() (vfs.FS, string){
			"os":  func() (vfs.FS, string) { return vfs.OS, t.TempDir() },
			"mem": func() (vfs.FS, string) { return vfs.NewMem(), "/data" },
		} {
			t.Run(mode.String()+"/"+fsName, func(t *testing.T) {
				ctx := context.Background()
				fsys, dir := mk()
				cfg := smallConfig(fsys)
				cfg.WriteMode = mode
				st, err := Open(dir, cfg)
				require.NoError(t, err)
				s, err := st.Stream(7)
				require.NoError(t, err)
				const n = 300
				ids := make([]RecordID, n)
				for i := range n {
					ids[i], err = s.AppendDurable(ctx, payloadFor(i, 10000+i), AppendOptions{ExtID: uint64(i)})
					require.NoError(t, err)
				}
				require.Greater(t, ids[n-1].Segment(), SegmentID(2), "records must span several segments")
				check := func(s *Stream) {
					recs := readAll(t, s)
					require.Len(t, recs, n)
					for i, r := range recs {
						require.Equal(t, ids[i], r.ID)
						require.Equal(t, uint64(i), r.Ordinal)
						require.Equal(t, uint64(i), r.ExtID)
						require.Equal(t, payloadFor(i, 10000+i), r.Payload)
					}
					r, err := s.NewReader(AtID(ids[150]))
					require.NoError(t, err)
					rec, err := r.Next()
					require.NoError(t, err)
					require.Equal(t, uint64(150), rec.Ordinal)
					r, err = s.NewReader(AtOrdinal(299))
					require.NoError(t, err)
					rec, err = r.Next()
					require.NoError(t, err)
					require.Equal(t, ids[299], rec.ID)
					_, err = r.Next()
					require.ErrorIs(t, err, io.EOF)
				}
				check(s)
				require.NoError(t, st.Close())

				st, err = Open(dir, cfg)
				require.NoError(t, err)
				s, err = st.Lookup(7)
				require.NoError(t, err)
				check(s)
				rep := st.Recovery()
				require.Len(t, rep, 1)
				require.Equal(t, uint64(n), rep[0].Records)
				id, err := s.AppendDurable(ctx, []byte("after reopen"), AppendOptions{})
				require.NoError(t, err)
				require.Greater(t, uint64(id), uint64(ids[n-1]))
				require.NoError(t, st.Close())
			})
		}
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	st, err := Open("/d", smallConfig(vfs.NewMem()))
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)

	_, err = s.Append(nil, AppendOptions{})
	require.ErrorIs(t, err, ErrEmptyRecord)
	_, err = s.Append(make([]byte, s.MaxRecordSize()+1), AppendOptions{})
	require.ErrorIs(t, err, ErrRecordTooLarge)
	big, err := s.AppendDurable(ctx, make([]byte, s.MaxRecordSize()), AppendOptions{})
	require.NoError(t, err, "a record of exactly the maximum size fits")

	id, err := s.AppendDurable(ctx, []byte("hello world"), AppendOptions{})
	require.NoError(t, err)
	_, err = s.NewReader(AtID(id + RecordID(segment.RecordSpan(len("hello world")))))
	require.ErrorIs(t, err, ErrNotFound, "past the end")
	_, err = s.NewReader(AtID(id + 8))
	require.ErrorIs(t, err, ErrInvalidRecordID, "inside a small record")
	_, err = s.NewReader(AtID(id + 4))
	require.ErrorIs(t, err, ErrInvalidRecordID, "unaligned")
	_, err = s.NewReader(AtID(big + 64))
	require.ErrorIs(t, err, ErrInvalidRecordID, "inside a record")
	_, err = s.NewReader(AtID(MakeRecordID(99, 64)))
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.NewReader(AtOrdinal(3))
	require.ErrorIs(t, err, ErrNotFound)
	_, err = st.Lookup(2)
	require.ErrorIs(t, err, ErrUnknownStream)
	require.ErrorIs(t, s.Flush(ctx, MakeRecordID(99, 64)), ErrNotFound)

	_, err = Open("/x", Config{FS: vfs.NewMem(), SegmentSize: 3 << 20})
	var ce interface{ Error() string }
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "segment_size")
}

func TestTailSealAndWouldBlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := smallConfig(vfs.NewMem())
	cfg.Sync = SyncNone
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(3)
	require.NoError(t, err)

	tl, err := s.Tail(AtStart())
	require.NoError(t, err)
	_, err = tl.TryNext()
	require.True(t, errors.Is(err, ErrWouldBlock) && KindOf(err) == Tail)

	id, err := s.Append([]byte("one"), AppendOptions{})
	require.NoError(t, err)
	_, err = tl.TryNext()
	require.Equal(t, Tail, KindOf(err), "not durable yet under SyncNone")
	got := make(chan Record, 1)
	go func() {
		rec, err := tl.Next(ctx)
		if err == nil {
			got <- rec
		}
		close(got)
	}()
	require.NoError(t, s.Flush(ctx, id))
	rec := testwait.Recv(t, got, testwait.Default, "the tail to return the flushed record")
	require.Equal(t, "one", string(rec.Payload))

	require.NoError(t, s.Seal(ctx))
	id2, err := s.AppendCtx(ctx, []byte("two"), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, id.Segment()+1, id2.Segment(), "append after Seal starts a new segment")
	require.NoError(t, s.Seal(ctx))
	cat := s.cat.Load()
	for _, g := range cat.segs[:2] {
		require.NotNil(t, g.footer.Load(), "segment %d sealed", g.id)
	}
}
