package testscale

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The size a run takes in each pass, and the environment's override.
func TestSizes(t *testing.T) {
	count, stride := 100, 1
	switch {
	case testing.Short():
		count, stride = 10, 8
	case Race:
		count, stride = 25, 4
	}
	require.Equal(t, count, Count("AOF2_TESTSCALE_UNSET", 100, 10))
	require.Equal(t, stride, Stride("AOF2_TESTSCALE_UNSET", 1, 8))
	if Race && !testing.Short() {
		require.Equal(t, 3, Stride("AOF2_TESTSCALE_UNSET", 1, 3), "never coarser than -short's")
	}
	t.Setenv("AOF2_TESTSCALE_SET", "7")
	require.Equal(t, 7, Count("AOF2_TESTSCALE_SET", 100, 10))
	require.Equal(t, 7, Stride("AOF2_TESTSCALE_SET", 1, 8))
	t.Setenv("AOF2_TESTSCALE_SET", "-1")
	require.Equal(t, 3, Env("AOF2_TESTSCALE_SET", 3), "not positive: the default")
}
