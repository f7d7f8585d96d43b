package logfields

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDuration(t *testing.T) {
	require.Equal(t, []any{"duration", "1.5s", "duration_ms", 1500.0}, Duration("duration", 1500*time.Millisecond))
	require.Equal(t, []any{"wait", "1.235ms", "wait_ms", 1.2345}, Duration("wait", 1234500*time.Nanosecond))
	require.Equal(t, []any{"d", "0s", "d_ms", 0.0}, Duration("d", 0))
}
