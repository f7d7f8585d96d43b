package core

import "sync"

// notifier is a broadcast: waiters take the current channel, and
// broadcast closes it and installs a fresh one. Waiters re-check their
// condition after waking, so spurious wake-ups are harmless.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// kick makes a non-blocking send on a one-slot wake-up channel.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
