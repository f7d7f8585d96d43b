package checksum

import (
	"errors"
	"fmt"
	"io"
)

// chunk is how much SumReaderAt reads at a time: a whole segment is never
// held in memory to be checked.
const chunk = 1 << 20

// SumReaderAt returns the CRC-64/NVME of r's first n bytes, read in chunks.
// before, if set, is called with each chunk's length before it is read (the
// scrubber paces its reads with it; its error stops the sum). A reader that
// ends before n bytes yields an error wrapping io.ErrUnexpectedEOF that says
// where it ended.
func SumReaderAt(r io.ReaderAt, n int64, before func(int64) error) (uint64, error) {
	buf := make([]byte, min(n, chunk))
	var crc uint64
	for off := int64(0); off < n; {
		want := min(n-off, chunk)
		if before != nil {
			if err := before(want); err != nil {
				return 0, err
			}
		}
		got, err := r.ReadAt(buf[:want], off)
		if int64(got) < want {
			if err == nil || errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("the bytes end at %d of %d: %w", off+int64(got), n, io.ErrUnexpectedEOF)
			}
			return 0, fmt.Errorf("read at %d: %w", off+int64(got), err)
		}
		crc = Update(crc, buf[:want])
		off += want
	}
	return crc, nil
}
