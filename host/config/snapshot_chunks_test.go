package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

// manifest.snapshot_every_chunks is documented as "this many chunks; -1
// disables the rule". 0 and other negatives are not in that range: 0
// silently means the default 64 (core/manifest's withDefaults) while the
// effective configuration shows 0, and -7 silently disables the rule.
// tracing.append_every, the same kind of key, refuses them.
func TestSnapshotEveryChunksRange(t *testing.T) {
	for _, v := range []string{"0", "-7"} {
		_, err := load(t, "", nil, "-manifest-snapshot-every-chunks", v)
		require.ErrorIs(t, err, types.ErrInvalidConfig, "manifest.snapshot_every_chunks = %s is accepted", v)
		var ce *Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "manifest.snapshot_every_chunks", ce.Key)
	}
	// The documented values still load.
	for _, v := range []string{"1", "64", "-1"} {
		_, err := load(t, "", nil, "-manifest-snapshot-every-chunks", v)
		require.NoError(t, err, v)
	}
}
