//go:build race

package budget

// raceEnabled: the race detector is on (the progress model runs fewer
// walks).
const raceEnabled = true
