package cloud

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
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

// TestSettingsSize: plugin size settings take the host's size grammar
// (part_size = "8MB" was refused though in range) and say the range in it.
func TestSettingsSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{in: "", want: 8 << 20},
		{in: "8388608", want: 8 << 20},
		{in: "8MiB", want: 8 << 20},
		{in: "8MB", want: 8_000_000},
		{in: "8 mb", want: 8_000_000},
		{in: "1.5GiB", want: 3 << 29},
		{in: "4KiB", err: `setting "part_size" must be a size from 5MiB to 5GiB, got 4KiB`},
		{in: "lots", err: `setting "part_size": want bytes as an integer`},
		{in: "-1", err: `setting "part_size": want bytes`},
		{in: "99999999999999999999TB", err: `setting "part_size": too large`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseSettings(map[string]string{"part_size": tc.in}, []string{"part_size"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Size("part_size", 8<<20, 5<<20, 5<<30)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Size(%q) = %d, %v; want an error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Size(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}
