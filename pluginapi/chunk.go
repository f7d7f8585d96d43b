package pluginapi

import "strconv"

// Chunk sizes for streamed Put and Get. The whole message, framing
// included, stays below gRPC's default 4 MiB receive limit, so even a
// plugin whose server was not built by Serve accepts the largest chunk.
const (
	MinChunkSize     uint32 = 64 << 10
	DefaultChunkSize uint32 = 1 << 20
	MaxChunkSize     uint32 = 4<<20 - 4<<10
)

// NegotiateChunkSize picks the chunk size from the host's proposal and the
// backend's limits: the proposal (or the backend's preference, or the
// default) clamped to [MinChunkSize, min(MaxChunkSize, limits.MaxChunkSize)].
func NegotiateChunkSize(proposed uint32, limits Limits) uint32 {
	size := proposed
	if size == 0 {
		size = limits.PreferredChunkSize
	}
	if size == 0 {
		size = DefaultChunkSize
	}
	ceiling := MaxChunkSize
	if limits.MaxChunkSize != 0 && limits.MaxChunkSize < ceiling {
		ceiling = limits.MaxChunkSize
	}
	size = min(size, ceiling)
	return max(size, MinChunkSize)
}

func validChunkSize(n uint32) bool { return n >= MinChunkSize && n <= MaxChunkSize }

func u64s(v uint64) string { return strconv.FormatUint(v, 10) }
