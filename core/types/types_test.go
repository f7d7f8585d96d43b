package types

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRecordID(t *testing.T) {
	id := MakeRecordID(MaxSegmentID, 1<<32-8)
	require.Equal(t, MaxSegmentID, id.Segment())
	require.Equal(t, uint32(1<<32-8), id.Offset())
	require.Equal(t, "7:64", MakeRecordID(7, 64).String())
}

func TestWouldBlock(t *testing.T) {
	err := fmt.Errorf("append: %w", &WouldBlock{Kind: Admission, Cause: syscall.ENOSPC})
	require.ErrorIs(t, err, ErrWouldBlock)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, Admission, KindOf(err))
	require.Equal(t, Kind(0), KindOf(errors.New("x")))
	require.Contains(t, err.Error(), "admission")
}

func TestTypedErrors(t *testing.T) {
	require.ErrorIs(t, &ConfigError{Key: "segment_size", Reason: "x"}, ErrInvalidConfig)
	require.ErrorIs(t, &CorruptError{Path: "p", Offset: 3, Reason: "crc"}, ErrCorrupt)
	require.Contains(t, (&ConfigError{Key: "segment_size", Reason: "x"}).Error(), "segment_size")
}
