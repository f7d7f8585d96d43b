package conformance

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPatternReaderMatchesPattern(t *testing.T) {
	want := pattern(42, 1000)
	for _, step := range []int{1, 3, 8, 13, 999} {
		r := &patternReader{seed: 42, n: 1000}
		var got []byte
		buf := make([]byte, step)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
		}
		require.Equal(t, want, got, "step %d", step)
	}
}
