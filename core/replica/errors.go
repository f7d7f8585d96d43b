package replica

import "errors"

// ErrStalled: a stream's next segment is missing from tier 2 while later
// ones are there (the writer lost it, or an operator deleted it). The
// replica stops following that stream at the gap and says so; it never
// skips records.
var ErrStalled = errors.New("replica: the next segment is missing from tier 2 while later ones exist")
