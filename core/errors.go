package core

import (
	"errors"

	"github.com/aof2/aof2/core/types"
)

// Identifiers, re-exported from core/types.
type (
	StreamID   = types.StreamID
	SegmentID  = types.SegmentID
	RecordID   = types.RecordID
	SegmentKey = types.SegmentKey
	Kind       = types.Kind
	WouldBlock = types.WouldBlock
	// NeedsRestoreError is the error behind ErrNeedsRestore.
	NeedsRestoreError = types.NeedsRestoreError
	// DamageError is the error behind ErrDamaged.
	DamageError = types.DamageError
)

// WouldBlock kinds.
const (
	Admission = types.Admission
	Rollover  = types.Rollover
	Hydration = types.Hydration
	Flush     = types.Flush
	Tail      = types.Tail
)

// Sentinel errors, re-exported from core/types.
var (
	ErrWouldBlock         = types.ErrWouldBlock
	ErrEmptyRecord        = types.ErrEmptyRecord
	ErrRecordTooLarge     = types.ErrRecordTooLarge
	ErrUnknownStream      = types.ErrUnknownStream
	ErrNotFound           = types.ErrNotFound
	ErrInvalidRecordID    = types.ErrInvalidRecordID
	ErrCorrupt            = types.ErrCorrupt
	ErrNoSpace            = types.ErrNoSpace
	ErrStreamFailed       = types.ErrStreamFailed
	ErrClosed             = types.ErrClosed
	ErrInvalidConfig      = types.ErrInvalidConfig
	ErrSegmentIDExhausted = types.ErrSegmentIDExhausted
	ErrNeedsRestore       = types.ErrNeedsRestore
	ErrDamaged            = types.ErrDamaged
	ErrNotDamaged         = types.ErrNotDamaged
	ErrTooManyStreams     = types.ErrTooManyStreams
	ErrFenced             = types.ErrFenced
	ErrReplica            = types.ErrReplica
)

// MakeRecordID builds a RecordID from a segment id and an offset.
func MakeRecordID(seg SegmentID, offset uint32) RecordID { return types.MakeRecordID(seg, offset) }

// KindOf returns the WouldBlock kind of err, or 0.
func KindOf(err error) Kind { return types.KindOf(err) }

// Errors of Stream.Follow.
var (
	// ErrNotNext: a followed segment does not continue the stream (not the
	// next id, or not where the newest segment ends).
	ErrNotNext = errors.New("aof2: segment does not follow the stream's newest segment")
	// ErrNoManifest: the operation needs the stream's manifest log and the
	// store runs without one (Config.NoManifest).
	ErrNoManifest = errors.New("aof2: the store runs without manifest logs")
	// ErrExtIDRequired: the store runs with Config.RequireExtID and a
	// record came without its log position (AppendOptions.ExtID 0).
	ErrExtIDRequired = errors.New("aof2: this store takes only records that carry their log position in ext_id (Config.RequireExtID)")
)
