package node

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/restore"
)

func TestOnlyOldestMissing(t *testing.T) {
	missing := fmt.Errorf("%w: stream 1 segment 4", restore.ErrOldestNotInTier2)
	other := fmt.Errorf("%w: stream 2", restore.ErrSegmentMismatch)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"none", nil, false},
		{"one stream", missing, true},
		{"every stream", errors.Join(missing, fmt.Errorf("%w: stream 3 segment 9", restore.ErrOldestNotInTier2)), true},
		{"and a hard error", errors.Join(missing, other), false},
		{"a hard error", other, false},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, onlyOldestMissing(tc.err)) })
	}
}
