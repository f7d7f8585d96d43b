package tier1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aof2/aof2/core/vfs"
)

// FuzzArtifact feeds arbitrary bytes to the artifact decoder (seek-table
// parsing, frame fetch and decode, embedded header/footer): it must never
// panic or allocate without bound, and every failure must be typed
// corruption.
func FuzzArtifact(f *testing.F) {
	mem := vfs.NewMem()
	s := writeSegment(f, mem, "/data", 1, 1, 1<<20, 20<<10, 1)
	art := ArtifactPath("/data", s.key())
	if _, err := CompressSegment(context.Background(), mem, s.source(), art, Options{FrameSize: 256 << 10}); err != nil {
		f.Fatal(err)
	}
	good := readAll(f, mem, art)
	f.Add(good)
	f.Add(good[len(good)-60:])
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := OpenReaderAt(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrCorruptArtifact) {
				t.Fatalf("untyped open error: %v", err)
			}
			return
		}
		buf := make([]byte, 200<<10)
		for off := int64(0); off < a.Size(); off += int64(len(buf)) {
			if _, err := a.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
				if !errors.Is(err, ErrCorruptArtifact) {
					t.Fatalf("untyped read error: %v", err)
				}
				return
			}
		}
		if _, err := a.Footer(); err != nil && !errors.Is(err, ErrCorruptArtifact) {
			t.Fatalf("untyped footer error: %v", err)
		}
		if err := verifyAll(context.Background(), a, s.expected()); err == nil && !bytes.Equal(b, good) {
			// Only bytes that decode to the very same segment may verify.
			if _, err := a.Header(); err != nil {
				t.Fatalf("verified but header unreadable: %v", err)
			}
		}
	})
}
