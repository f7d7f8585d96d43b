package cloud

import (
	"errors"
	"fmt"
	"io"

	"github.com/aof2/aof2/pluginapi"
)

// VerifiedBody wraps a provider's response body for a Get of rng. It
// returns io.EOF only after exactly rng.Length bytes and, when the whole
// object with a stored CRC was read, after the CRC-64/NVME matched; a
// short or long body, or wrong bytes, fail with ErrChecksum. Other read
// errors pass through mapErr, so no provider error escapes unmapped.
func VerifiedBody(rc io.ReadCloser, key string, rng pluginapi.ObjectRange, mapErr func(error) error) io.ReadCloser {
	whole := rng.Offset == 0 && rng.Length == rng.Info.Size && rng.Info.HasCRC64
	return &verifiedBody{rc: rc, key: key, want: rng.Length, checkCRC: whole, crc: rng.Info.CRC64, mapErr: mapErr}
}

type verifiedBody struct {
	rc       io.ReadCloser
	key      string
	want, n  uint64
	checkCRC bool
	crc, sum uint64
	mapErr   func(error) error
	err      error
}

func (v *verifiedBody) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	if v.n+uint64(n) > v.want {
		v.err = &pluginapi.Error{Code: pluginapi.CodeChecksum, Key: v.key, Message: fmt.Sprintf("the backend sent more than the %d bytes of the range", v.want)}
		return 0, v.err
	}
	v.n += uint64(n)
	if v.checkCRC {
		v.sum = pluginapi.UpdateCRC64(v.sum, p[:n])
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		v.err = v.finish()
	case errors.Is(err, io.ErrUnexpectedEOF):
		v.err = &pluginapi.Error{Code: pluginapi.CodeChecksum, Key: v.key, Message: fmt.Sprintf("the backend's body ended after %d of %d bytes", v.n, v.want), Err: err}
	default:
		v.err = v.mapErr(err)
	}
	if v.err == io.EOF && n > 0 {
		return n, nil
	}
	return n, v.err
}

func (v *verifiedBody) finish() error {
	if v.n != v.want {
		return &pluginapi.Error{Code: pluginapi.CodeChecksum, Key: v.key, Message: fmt.Sprintf("the backend's body ended after %d of %d bytes", v.n, v.want)}
	}
	if v.checkCRC && v.sum != v.crc {
		return &pluginapi.Error{Code: pluginapi.CodeChecksum, Key: v.key, Message: fmt.Sprintf("read CRC-64/NVME %016x, stored %016x", v.sum, v.crc)}
	}
	return io.EOF
}

func (v *verifiedBody) Close() error { return v.rc.Close() }
