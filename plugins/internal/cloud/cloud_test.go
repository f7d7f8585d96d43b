package cloud

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"
)

// dribble returns at most n bytes a Read, as a provider's body returns
// what the socket holds.
type dribble struct {
	r io.Reader
	n int
}

func (d *dribble) Read(p []byte) (int, error) { return d.r.Read(p[:min(len(p), d.n)]) }

// recorder keeps the size of every Write.
type recorder struct {
	bytes.Buffer
	sizes []int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.sizes = append(r.sizes, len(p))
	return r.Buffer.Write(p)
}

func TestCopyFullWritesWholeBuffers(t *testing.T) {
	data := make([]byte, 3*copyBufferSize+copyBufferSize/2)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var dst recorder
	if err := copyFull(&dst, &dribble{r: bytes.NewReader(data), n: 1000}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Fatalf("copied %d bytes that differ from the %d sent", dst.Len(), len(data))
	}
	want := []int{copyBufferSize, copyBufferSize, copyBufferSize, copyBufferSize / 2}
	if !slices.Equal(dst.sizes, want) {
		t.Fatalf("write sizes %v, want %v", dst.sizes, want)
	}
	// A body that ends on a buffer boundary and one that is empty.
	for _, n := range []int{copyBufferSize, 0} {
		var dst recorder
		if err := copyFull(&dst, iotest.DataErrReader(bytes.NewReader(data[:n]))); err != nil || dst.Len() != n {
			t.Fatalf("%d bytes: copied %d, err %v", n, dst.Len(), err)
		}
		if n == 0 && len(dst.sizes) != 0 {
			t.Fatalf("empty body: %d writes", len(dst.sizes))
		}
	}
}

func TestCopyFullErrors(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 5000)
	// Only io.EOF ends a copy well: a reader's io.ErrUnexpectedEOF (an
	// unverified body cut short) is an error, after what arrived is written.
	cut := io.MultiReader(bytes.NewReader(data), iotest.ErrReader(io.ErrUnexpectedEOF))
	var dst recorder
	if err := copyFull(&dst, cut); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut body: err %v, want io.ErrUnexpectedEOF", err)
	}
	if dst.Len() != len(data) {
		t.Fatalf("cut body: wrote %d of the %d bytes that arrived", dst.Len(), len(data))
	}
	boom := errors.New("disk full")
	if err := copyFull(failWriter{boom}, bytes.NewReader(data)); !errors.Is(err, boom) {
		t.Fatalf("failing destination: err %v, want %v", err, boom)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
