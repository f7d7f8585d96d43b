package core

import (
	"sync"
	"sync/atomic"
)

// notifier is a broadcast: waiters take the current channel, and
// broadcast closes it and installs a fresh one. Waiters re-check their
// condition after waking, so spurious wake-ups are harmless. Taking the
// channel is one atomic load: it sits on the append and flush paths.
type notifier struct {
	mu sync.Mutex // serialises broadcasts
	ch atomic.Pointer[chan struct{}]
}

func newNotifier() *notifier {
	n := &notifier{}
	ch := make(chan struct{})
	n.ch.Store(&ch)
	return n
}

func (n *notifier) wait() <-chan struct{} { return *n.ch.Load() }

func (n *notifier) broadcast() {
	n.mu.Lock()
	ch := make(chan struct{})
	close(*n.ch.Swap(&ch))
	n.mu.Unlock()
}

// kick makes a non-blocking send on a one-slot wake-up channel.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
