package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
)

// TestPrintLoss: what repair -accept-loss prints says what happened to the
// segment, for each kind of loss.
func TestPrintLoss(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  client.LossReport
		want []string
	}{
		{"filled", client.LossReport{Segment: 3, Records: 40, Filled: [][2]uint64{{100, 200}}, Quarantine: []string{"s.damaged-100"}},
			[]string{"loss accepted in segment 3: 40 intact records kept, 1 damaged ranges filled", "filled [100, 200)", "original bytes kept in s.damaged-100"}},
		{"placeholder", client.LossReport{Segment: 4, Placeholder: true},
			[]string{"segment 4's file was gone; an empty sealed segment took its id"}},
		{"lost", client.LossReport{Segment: 2, Lost: true, Quarantine: []string{"s.damaged-1"}},
			[]string{"segment 2 could not be read and no tier held a copy", "original bytes kept in s.damaged-1"}},
		{"from the node WAL", client.LossReport{Segment: 5, Records: 30, FromNodeWAL: 10, NodeWALKept: 2},
			[]string{"10 of those records written back from the node WAL's copy", "2 of the node WAL's records for the stream could not be placed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			printLoss(&cmdEnv{stdout: &out}, 7, tc.rep)
			for _, w := range tc.want {
				require.Contains(t, out.String(), w)
			}
			require.Contains(t, out.String(), "stream 7 takes appends again")
		})
	}
}
