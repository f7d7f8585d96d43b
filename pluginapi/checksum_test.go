package pluginapi

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func TestCRC64MatchesNVMECheckValue(t *testing.T) {
	require.Equal(t, uint64(0xae8b14860a799888), CRC64([]byte("123456789")))
	require.Equal(t, CRC64([]byte("123456789")), UpdateCRC64(UpdateCRC64(0, []byte("1234")), []byte("56789")))
}

func TestCheckPut(t *testing.T) {
	data := []byte("hello, tier two")
	req := PutRequest{Key: "k", Size: uint64(len(data)), CRC64: CRC64(data)}
	got, err := io.ReadAll(iotest.OneByteReader(CheckPut(req, bytes.NewReader(data))))
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.NoError(t, iotest.TestReader(CheckPut(req, bytes.NewReader(data)), data))

	bad := []struct {
		name string
		req  PutRequest
	}{
		{"crc", PutRequest{Key: "k", Size: req.Size, CRC64: req.CRC64 ^ 1}},
		{"short", PutRequest{Key: "k", Size: req.Size + 1, CRC64: req.CRC64}},
		{"long", PutRequest{Key: "k", Size: req.Size - 1, CRC64: CRC64(data[:len(data)-1])}},
	}
	for _, b := range bad {
		_, err := io.ReadAll(CheckPut(b.req, bytes.NewReader(data)))
		require.ErrorIs(t, err, ErrChecksum, b.name)
	}
	c := CheckPut(req, bytes.NewReader(data))
	require.Same(t, c, CheckPut(req, c), "re-wrapping a checked body is free")
}

func TestResolveRange(t *testing.T) {
	cases := []struct{ size, off, length, want uint64 }{
		{0, 0, 0, 0}, {10, 0, 0, 10}, {10, 9, 0, 1}, {10, 9, 5, 1}, {10, 2, 3, 3},
	}
	for _, c := range cases {
		got, err := ResolveRange(c.size, c.off, c.length)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%+v", c)
	}
	for _, c := range [][2]uint64{{10, 10}, {10, 11}, {0, 1}} {
		_, err := ResolveRange(c[0], c[1], 0)
		require.ErrorIs(t, err, ErrOutOfRange, "%v", c)
	}
}

func TestNegotiateChunkSize(t *testing.T) {
	require.Equal(t, DefaultChunkSize, NegotiateChunkSize(0, Limits{}))
	require.Equal(t, MinChunkSize, NegotiateChunkSize(1, Limits{}))
	require.Equal(t, MaxChunkSize, NegotiateChunkSize(64<<20, Limits{}))
	require.Equal(t, uint32(256<<10), NegotiateChunkSize(0, Limits{PreferredChunkSize: 256 << 10}))
	require.Equal(t, uint32(512<<10), NegotiateChunkSize(2<<20, Limits{MaxChunkSize: 512 << 10}))
	require.Less(t, MaxChunkSize, uint32(4<<20), "chunks stay below gRPC's default 4 MiB message limit")
}
