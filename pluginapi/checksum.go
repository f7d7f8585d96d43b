package pluginapi

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/minio/crc64nvme"
)

// CRC64 returns the CRC-64/NVME of b, the checksum every contract object
// carries (the same function core/checksum uses; plugins must not import
// core, so it is repeated here over the same library).
func CRC64(b []byte) uint64 { return crc64nvme.Checksum(b) }

// UpdateCRC64 extends crc (a previous result, or 0) with b.
func UpdateCRC64(crc uint64, b []byte) uint64 { return crc64nvme.Update(crc, b) }

// CRC64Reader returns the CRC-64/NVME and length of everything r yields.
func CRC64Reader(r io.Reader) (crc uint64, n uint64, err error) {
	buf := make([]byte, 1<<20)
	for {
		m, rerr := r.Read(buf)
		crc = crc64nvme.Update(crc, buf[:m])
		n += uint64(m)
		if rerr == io.EOF {
			return crc, n, nil
		}
		if rerr != nil {
			return crc, n, rerr
		}
	}
}

// checkedBody enforces a PutRequest's size and checksum on a body: it
// fails with ErrChecksum past Size bytes, at a short body, or when the CRC
// differs, instead of returning io.EOF.
type checkedBody struct {
	r         io.Reader
	key       string
	size, crc uint64
	n, sum    uint64
	err       error
}

// CheckPut wraps body so that it yields io.EOF only after exactly req.Size
// bytes with CRC-64/NVME req.CRC64; otherwise the read that would have
// ended the body returns an error matching ErrChecksum. A backend that
// commits only on io.EOF therefore never stores bytes the host did not
// send. Wrapping an already checked body for the same request is free.
func CheckPut(req PutRequest, body io.Reader) io.Reader {
	if c, ok := body.(*checkedBody); ok && c.key == req.Key && c.size == req.Size && c.crc == req.CRC64 {
		return c
	}
	return &checkedBody{r: body, key: req.Key, size: req.Size, crc: req.CRC64}
}

func (c *checkedBody) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.r.Read(p)
	if n > 0 {
		if c.n+uint64(n) > c.size {
			c.err = &Error{Code: CodeChecksum, Key: c.key, Message: fmt.Sprintf("body is longer than the declared %d bytes", c.size)}
			return 0, c.err
		}
		c.sum = crc64nvme.Update(c.sum, p[:n])
		c.n += uint64(n)
	}
	switch {
	case errors.Is(err, io.EOF):
		if c.n != c.size {
			c.err = &Error{Code: CodeChecksum, Key: c.key, Message: fmt.Sprintf("body ended after %d of %d bytes", c.n, c.size)}
		} else if c.sum != c.crc {
			c.err = &Error{Code: CodeChecksum, Key: c.key, Message: fmt.Sprintf("body CRC-64/NVME %016x, declared %016x", c.sum, c.crc)}
		} else {
			c.err = io.EOF
		}
		if n > 0 && c.err == io.EOF {
			return n, nil
		}
		return n, c.err
	case err != nil:
		c.err = err
	}
	return n, err
}

// WriteTo hands a Put stream's chunks to w without an intermediate copy,
// enforcing the same size and checksum rules as Read.
func (c *checkedBody) WriteTo(w io.Writer) (int64, error) {
	wt, ok := c.r.(*streamBody)
	if !ok || c.err != nil || c.n != 0 {
		return io.CopyBuffer(w, struct{ io.Reader }{c}, make([]byte, 1<<20)) // plain Read path
	}
	n, err := wt.WriteTo(&checkingWriter{c: c, w: w})
	if err != nil {
		if c.err == nil || c.err == io.EOF {
			c.err = err
		}
		return n, c.err
	}
	c.r = eofReader{}
	if _, rerr := c.Read(make([]byte, 1)); rerr != io.EOF {
		return n, rerr
	}
	return n, nil
}

// checkingWriter counts and checksums what passes to w, refusing bytes
// past the declared size.
type checkingWriter struct {
	c *checkedBody
	w io.Writer
}

func (cw *checkingWriter) Write(p []byte) (int, error) {
	c := cw.c
	if c.n+uint64(len(p)) > c.size {
		c.err = &Error{Code: CodeChecksum, Key: c.key, Message: fmt.Sprintf("body is longer than the declared %d bytes", c.size)}
		return 0, c.err
	}
	c.sum = crc64nvme.Update(c.sum, p)
	c.n += uint64(len(p))
	return cw.w.Write(p)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// FileCRC64 returns the CRC-64/NVME and length of the file at path, the
// check the host runs on every whole-object GetFile output.
func FileCRC64(path string) (crc uint64, n uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	return crcFile(f)
}
