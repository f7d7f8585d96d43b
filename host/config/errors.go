package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aof2/aof2/core/types"
)

// Error is a configuration value the host refuses. It names the key as
// written in HCL, the value, and where the value came from, so an operator
// can fix it without reading code. errors.Is(err, types.ErrInvalidConfig)
// holds for every Error.
type Error struct {
	// Key is the HCL path ("segment.size", "tier0.stream.max_bytes"), or
	// the flag or variable as given when it names no key.
	Key string
	// Value is the offending value as written; "" when there is none and
	// redacted for secrets.
	Value string
	// Source says where the value came from: "aof2.hcl:12:3",
	// "env AOF2_SEGMENT_SIZE", "flag -segment-size" or "default".
	Source string
	// Reason says what is wrong or what is allowed.
	Reason string
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		if e.Value != "" {
			fmt.Fprintf(&b, " = %s", e.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap exposes the cause and types.ErrInvalidConfig.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{types.ErrInvalidConfig}
	}
	return []error{e.Err, types.ErrInvalidConfig}
}

// errorList collects the errors of one phase so an operator sees every
// bad key of a file at once rather than one per restart.
type errorList []error

func (l *errorList) add(err error) {
	if err != nil {
		*l = append(*l, err)
	}
}

func (l errorList) err() error {
	if len(l) == 1 {
		return l[0]
	}
	return errors.Join(l...)
}
