package cloudtest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

// LargeSize is the object size of the multipart tests: eight 8 MiB parts.
const LargeSize = 64 << 20

// RunLarge exercises the multipart/resumable/block path: objects larger
// than the part size through Put and PutFile, ranges across part
// boundaries, a wrong checksum found only at the end, and cancellation
// mid-upload, none of which may leave anything visible.
func RunLarge(t *testing.T, r *Rig) {
	// Each 8 MiB part or block is one request the emulator may drop under
	// CI load (Azurite reset one); the retry policy is not what this tests.
	b := r.Open(t, r.Endpoint, ConformanceSettings(r.Parts))
	data := Pattern(9, LargeSize)
	crc := pluginapi.CRC64(data)
	ctx := context.Background()
	t.Run("PutGet", func(t *testing.T) {
		info, err := PutBytes(ctx, b, "large/put", data)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != LargeSize || !info.HasCRC64 || info.CRC64 != crc || info.ETag == "" {
			t.Fatalf("Put acknowledged %+v", info)
		}
		MustMatch(t, b, "large/put", data)
		// A range across the boundary between the first two parts.
		got, err := readRange(b, pluginapi.GetRequest{Key: "large/put", Offset: 8<<20 - 100, Length: 300})
		if err != nil || string(got) != string(data[8<<20-100:8<<20+200]) {
			t.Fatalf("range across a part boundary: %d bytes, %v", len(got), err)
		}
	})
	t.Run("PutFileGetFile", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := b.PutFile(ctx, pluginapi.PutRequest{Key: "large/file", Size: LargeSize, CRC64: crc}, src); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "dst")
		if _, err := b.GetFile(ctx, pluginapi.GetRequest{Key: "large/file"}, dst); err != nil {
			t.Fatal(err)
		}
		if got, n, err := pluginapi.FileCRC64(dst); err != nil || n != LargeSize || got != crc {
			t.Fatalf("GetFile wrote %d bytes with CRC %016x (%v)", n, got, err)
		}
	})
	t.Run("WrongChecksum", func(t *testing.T) {
		_, err := b.Put(ctx, pluginapi.PutRequest{Key: "large/bad-crc", Size: LargeSize, CRC64: crc ^ 1}, bytesReader(data))
		WantCode(t, err, pluginapi.ErrChecksum, "64 MiB Put with a wrong CRC")
		MustBeAbsent(t, b, "large/bad-crc", "after a rejected 64 MiB Put")
		_, err = b.Put(ctx, pluginapi.PutRequest{Key: "large/short", Size: LargeSize + 1, CRC64: crc}, bytesReader(data))
		WantCode(t, err, pluginapi.ErrChecksum, "64 MiB Put with a short body")
		MustBeAbsent(t, b, "large/short", "after a short 64 MiB Put")
		if r.Leftovers != nil {
			r.Leftovers(t)
		}
	})
	t.Run("CancelMidUpload", func(t *testing.T) {
		for _, existing := range []bool{false, true} {
			key := "large/cancelled"
			old := []byte("previous version")
			if existing {
				if _, err := PutBytes(ctx, b, key, old); err != nil {
					t.Fatal(err)
				}
			}
			cctx, cancel := context.WithCancel(ctx)
			body := &stallingReader{data: data, stallAt: 3*8<<20 + 5, reached: make(chan struct{}), ctx: cctx}
			done := make(chan error, 1)
			go func() {
				_, err := b.Put(cctx, pluginapi.PutRequest{Key: key, Size: LargeSize, CRC64: crc}, body)
				done <- err
			}()
			select {
			case <-body.reached:
			case err := <-done:
				cancel()
				t.Fatalf("Put ended before the body stalled: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // let the first parts reach the server
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Put: %v, want context.Canceled", err)
			}
			time.Sleep(300 * time.Millisecond)
			if existing {
				MustMatch(t, b, key, old)
				if err := b.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
			} else {
				MustBeAbsent(t, b, key, "after a cancelled 64 MiB Put")
			}
		}
		if r.Leftovers != nil {
			r.Leftovers(t)
		}
	})
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// bytesReader hides bytes.Reader's Seek/WriterTo, as a Put stream does.
func bytesReader(b []byte) *sliceReader { return &sliceReader{b: b} }

// stallingReader yields data up to stallAt, then blocks until ctx ends.
type stallingReader struct {
	data    []byte
	off     int
	stallAt int
	reached chan struct{}
	once    sync.Once
	ctx     context.Context
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.off >= s.stallAt {
		s.once.Do(func() { close(s.reached) })
		<-s.ctx.Done()
		return 0, s.ctx.Err()
	}
	n := copy(p[:min(len(p), s.stallAt-s.off)], s.data[s.off:])
	s.off += n
	return n, nil
}
