package manifest

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps one of these (with
// %w and context), so callers test with errors.Is and never match strings.
var (
	// ErrCorrupt marks bytes that fail a magic, version, length, CRC or
	// structural check: a damaged chunk, record or snapshot.
	ErrCorrupt = errors.New("manifest: corrupt")
	// ErrInvalidConfig marks an out-of-range option; the concrete error is a
	// *ConfigError naming the key.
	ErrInvalidConfig = errors.New("manifest: invalid configuration")
	// ErrEmptyRecord is returned for a record without payload bytes.
	ErrEmptyRecord = errors.New("manifest: empty record")
	// ErrInvalidRecord is returned for a record that cannot be encoded: a
	// key or blob longer than its u16 length prefix, an empty object key, a
	// record type a caller may not append (SnapshotMarker, Unknown).
	ErrInvalidRecord = errors.New("manifest: invalid record")
	// ErrRecordTooLarge is returned when a record (or an atomic batch) does
	// not fit in an empty chunk of the configured capacity.
	ErrRecordTooLarge = errors.New("manifest: record does not fit in a chunk")
	// ErrClosed is returned by every call on a closed Log.
	ErrClosed = errors.New("manifest: log closed")
	// ErrFailed marks the fail-stop state: a write or fsync on the commit
	// path failed, so the Log refuses all further work. The cause is joined
	// to it. Reopening the Log recovers from what is on disk.
	ErrFailed = errors.New("manifest: log failed (fail-stop); reopen to recover")
	// ErrNotFound is returned for a chunk index the Log does not hold.
	ErrNotFound = errors.New("manifest: not found")
)

// ConfigError reports an invalid option, naming the configuration key so
// that an operator can find it.
type ConfigError struct {
	Key    string // configuration key or environment variable
	Value  any    // offending value
	Reason string // what is allowed
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("manifest: invalid %s = %v: %s", e.Key, e.Value, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalidConfig) match.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// invalidf returns an error wrapping ErrInvalidRecord.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRecord, fmt.Sprintf(format, args...))
}

// failStop wraps the cause of a fail-stop with ErrFailed and context.
func failStop(op string, err error) error {
	if errors.Is(err, ErrFailed) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrFailed, op, err)
}
