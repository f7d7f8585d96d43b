package fs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []*header{
		{size: 0, crc: 0, modTime: 1, etag: "e"},
		{size: 1 << 40, crc: 0xdeadbeefcafebabe, modTime: -5, etag: "0123-abcd", md: map[string]string{"b": "2", "a": "1", "z": ""}},
	} {
		b, err := encodeHeader(h)
		require.NoError(t, err)
		got, err := decodeHeader(b)
		require.NoError(t, err)
		if len(h.md) == 0 {
			h.md = nil
		}
		require.Equal(t, h, got)
		again, err := encodeHeader(got)
		require.NoError(t, err)
		require.Equal(t, b, again, "encoding is deterministic")
	}
}

func TestHeaderRejectsDamage(t *testing.T) {
	b, err := encodeHeader(&header{size: 10, crc: 7, etag: "x", md: map[string]string{"k": "v"}})
	require.NoError(t, err)
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x10
		_, err := decodeHeader(bad)
		require.ErrorIs(t, err, errCorrupt, "flipping byte %d went unnoticed", i)
	}
	for n := range len(b) {
		_, err := decodeHeader(b[:n])
		require.ErrorIs(t, err, errCorrupt, "truncation to %d bytes went unnoticed", n)
	}
}

func FuzzDecodeHeader(f *testing.F) {
	good, _ := encodeHeader(&header{size: 3, crc: 9, etag: "etag", md: map[string]string{"a": "b"}})
	f.Add(good)
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			require.ErrorIs(t, err, errCorrupt)
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		again, err := encodeHeader(h)
		require.NoError(t, err)
		require.Equal(t, b, again)
	})
}

func TestSplitKey(t *testing.T) {
	long := make([]byte, 450)
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	dirs, file := splitKey("x/" + string(long) + "/y")
	require.Equal(t, []string{"x.d", string(long[:200]) + ".c", string(long[200:400]) + ".c", string(long[400:]) + ".d"}, dirs)
	require.Equal(t, "y.o", file)
	dirs, file = splitKey(string(long[:400]))
	require.Equal(t, []string{string(long[:200]) + ".c"}, dirs)
	require.Equal(t, string(long[200:400])+".o", file)
}
