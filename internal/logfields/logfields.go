// Package logfields holds the log fields AOF2 writes the same way
// everywhere. hclog's JSON writes a time.Duration as integer nanoseconds
// (unreadable: 1500000000), its text form as 1.5s: Duration gives both
// encodings a readable value and a number to query on.
package logfields

import "time"

// Duration is the key-value pairs for d: key as text ("1.5s") and
// key_ms as a number of milliseconds (1500), for a log call's args.
func Duration(key string, d time.Duration) []any {
	return []any{key, d.Round(time.Microsecond).String(), key + "_ms", float64(d) / float64(time.Millisecond)}
}
