// Package testwait bounds the waits of tests: a test that waits for
// something the code under test should do fails after a deadline, saying
// what it waited for, instead of hanging until go test's global timeout.
package testwait

import (
	"fmt"
	"testing"
	"time"
)

// Default is the bound for an event that should follow at once, generous
// enough for a loaded 2-core machine under -race.
const Default = 30 * time.Second

// Recv returns the next value from ch (or the zero value once ch is
// closed), failing the test if none arrives within d. what says what the
// test waited for. Call it from the test's goroutine.
func Recv[T any](t testing.TB, ch <-chan T, d time.Duration, what string, args ...any) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("waited %s for %s", d, fmt.Sprintf(what, args...))
		panic("unreachable")
	}
}

// Until calls cond every tick until it returns true, failing the test if it
// has not within d. Unlike require.Eventually, cond runs on the test's
// goroutine, so it may use require and t.Fatal itself.
func Until(t testing.TB, d, tick time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, fmt.Sprintf(what, args...))
		}
		time.Sleep(tick)
	}
}
