package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range []command{
		appendCommand(7, []Record{{Timestamp: 5, Payload: []byte("a")}, {Timestamp: 3, Payload: []byte("bc")}}),
		{kind: kindAppend, groups: []group{{stream: 1, records: []Record{{Timestamp: 9, Payload: []byte("x")}}}, {stream: 1, records: []Record{{Timestamp: 8, Payload: []byte("y")}}}, {stream: 2, records: []Record{{Timestamp: -1, Payload: []byte("z")}}}}},
		{kind: kindSeal, stream: 9, segment: 4},
		{kind: kindMember, member: member{ID: "n1", Addr: APIAddr{GRPC: "127.0.0.1:7400", HTTP: "127.0.0.1:8080"}}},
		{kind: kindTier, stream: 3, segment: 12, object: object{Key: "p/streams/3/segments/12.seg.zst", ETag: "\"e1\""}},
		{kind: kindDrop, stream: 3, segment: 12, object: object{Key: "p/streams/3/segments/12.seg.zst"}},
	} {
		got, err := decodeCommand(c.encode())
		require.NoError(t, err)
		require.Equal(t, c, got)
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	good := appendCommand(1, []Record{{Timestamp: 1, Payload: []byte("x")}}).encode()
	flipped := append([]byte(nil), good...)
	flipped[3] ^= 1
	newer := append([]byte(nil), good...)
	newer[0] = commandVersion + 1
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short":         good[:4],
		"checksum":      flipped,
		"version":       reseal(newer),
		"kind":          reseal([]byte{commandVersion, 99, 0, 0, 0, 0}),
		"no recs":       reseal(append([]byte{commandVersion, byte(kindAppend), 1, 0, 0}, 0, 0, 0, 0)),
		"truncated":     reseal(append([]byte{commandVersion, byte(kindAppend), 1, 1, 0, 0, 9, 'x'}, 0, 0, 0, 0)),
		"trailing":      reseal(append([]byte{commandVersion, byte(kindSeal), 1, 2, 3}, 0, 0, 0, 0)),
		"no key":        reseal(append([]byte{commandVersion, byte(kindTier), 1, 2, 0, 0}, 0, 0, 0, 0)),
		"drop, no key":  reseal(append([]byte{commandVersion, byte(kindDrop), 1, 2, 0}, 0, 0, 0, 0)),
		"drop, an etag": reseal(append([]byte{commandVersion, byte(kindDrop), 1, 2, 1, 'k', 1, 'e'}, 0, 0, 0, 0)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeCommand(b)
			require.ErrorIs(t, err, ErrBadCommand)
		})
	}
}

// reseal replaces b's last four bytes with the CRC of the rest, so the
// decoder gets past the checksum to the part under test.
func reseal(b []byte) []byte {
	body := b[:len(b)-4]
	return command{}.sealBytes(body)
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(appendCommand(3, []Record{{Timestamp: -4, Payload: []byte("hello")}}).encode())
	f.Add(command{kind: kindSeal, stream: 2}.encode())
	f.Add(command{kind: kindMember, member: member{ID: "a", Addr: APIAddr{GRPC: "b", HTTP: "c"}}}.encode())
	f.Add(command{kind: kindTier, stream: 1, segment: 2, object: object{Key: "k", ETag: "e"}}.encode())
	f.Add(command{kind: kindDrop, stream: 1, segment: 2, object: object{Key: "k"}}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommand(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadCommand)
			return
		}
		again, err := decodeCommand(c.encode())
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}
