package tier2

import (
	"errors"
	"fmt"
	"time"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// Sentinels. Every error this package returns wraps one of these or a
// pluginapi sentinel (ErrNotFound, ErrAuth, ...), so callers branch with
// errors.Is and never on text.
var (
	// ErrDataLoss: an upload found a different object already stored
	// under its key. The store never overwrites it; an operator must look.
	ErrDataLoss = errors.New("tier2: data loss: a different object is stored under the key")
	// ErrChecksum: downloaded bytes do not match the stored checksum (or a
	// local file does not match the checksum its caller expected). Nothing
	// unverified is returned. It also matches pluginapi.ErrChecksum and
	// types.ErrCorrupt.
	ErrChecksum = errors.New("tier2: checksum mismatch")
	// ErrBreakerOpen: a circuit breaker is open, this store's (after
	// repeated backend failures) or the plugin supervisor's (after
	// repeated plugin crashes); the call failed fast without reaching the
	// backend and the store did not retry it. It is the supervisor's
	// sentinel itself (pluginapi/host.ErrBreakerOpen), so this one check
	// covers both breakers, and it also matches pluginapi.ErrUnavailable.
	ErrBreakerOpen = pluginhost.ErrBreakerOpen
	// ErrNotStored: a Put was acknowledged but the object is not there
	// (or not with the bytes sent) when verified afterwards.
	ErrNotStored = errors.New("tier2: acknowledged upload not found on verification")
	// ErrUnknownKey: a key outside the layout (see Layout.Parse).
	ErrUnknownKey = errors.New("tier2: key outside the layout")
	// ErrInvalidKey: a prefix or id that cannot form a valid key.
	ErrInvalidKey = errors.New("tier2: invalid key")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("tier2: closed")
)

// DataLossError is the loud error of an upload whose key already holds
// a different object.
type DataLossError struct {
	Key string
	// Local is the object the caller tried to store; Remote what is there.
	LocalCRC64, RemoteCRC64 uint64
	LocalSize, RemoteSize   uint64
	// RemoteHasCRC64 is false when the stored object carries no checksum
	// at all, which counts as different.
	RemoteHasCRC64 bool
	RemoteETag     string
}

func (e *DataLossError) Error() string {
	remote := "no checksum"
	if e.RemoteHasCRC64 {
		remote = fmt.Sprintf("crc64 %016x", e.RemoteCRC64)
	}
	return fmt.Sprintf("%v: key %q holds %d bytes with %s (etag %q), the upload has %d bytes with crc64 %016x",
		ErrDataLoss, e.Key, e.RemoteSize, remote, e.RemoteETag, e.LocalSize, e.LocalCRC64)
}

func (e *DataLossError) Unwrap() error { return ErrDataLoss }

// ChecksumError reports bytes that are not the ones stored.
type ChecksumError struct {
	Key string
	// What failed, e.g. "download", "range read length", "local file".
	What      string
	Want, Got uint64
	// Detail explains mismatches that are not a CRC (lengths, a missing
	// stored checksum).
	Detail string
	// Err is the backend's own checksum error, if that is how it surfaced.
	Err error
}

func (e *ChecksumError) Error() string {
	msg := fmt.Sprintf("%v: %s of %q", ErrChecksum, e.What, e.Key)
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else {
		msg += fmt.Sprintf(": crc64 %016x, stored %016x", e.Got, e.Want)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ChecksumError) Unwrap() []error {
	errs := []error{ErrChecksum, pluginapi.ErrChecksum, types.ErrCorrupt}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// BreakerOpenError is returned while the breaker is open.
type BreakerOpenError struct {
	// RetryAt is when the breaker lets a probe call through.
	RetryAt time.Time
	// Last is the failure that opened it (or failed its last probe).
	Last error
}

func (e *BreakerOpenError) Error() string {
	msg := fmt.Sprintf("tier2: %v until %s", ErrBreakerOpen, e.RetryAt.Format(time.RFC3339Nano))
	if e.Last != nil {
		msg += " (last failure: " + e.Last.Error() + ")"
	}
	return msg
}

func (e *BreakerOpenError) Unwrap() []error {
	return []error{ErrBreakerOpen, pluginapi.ErrUnavailable}
}

// UnknownKeyError is a key Layout.Parse does not recognise.
type UnknownKeyError struct {
	Key    string
	Reason string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("%v: %q: %s", ErrUnknownKey, e.Key, e.Reason)
}

func (e *UnknownKeyError) Unwrap() error { return ErrUnknownKey }
