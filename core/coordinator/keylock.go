package coordinator

import (
	"sync"

	"github.com/aof2/aof2/core/types"
)

// keyLock serialises eviction and hydration of one segment.
type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lockKey locks k and returns the unlock function.
func (c *Coordinator) lockKey(k types.SegmentKey) func() {
	c.mu.Lock()
	l := c.keyLockOf(k)
	l.refs++
	c.mu.Unlock()
	l.mu.Lock()
	return func() { c.unlockKey(k, l) }
}

// tryLockKey is lockKey without the wait: ok is false while another
// holds k.
func (c *Coordinator) tryLockKey(k types.SegmentKey) (unlock func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.keyLockOf(k)
	if !l.mu.TryLock() {
		return nil, false // held: refs counts its holder, so l stays
	}
	l.refs++
	return func() { c.unlockKey(k, l) }, true
}

// keyLockOf returns k's lock, made if needed. c.mu is held.
func (c *Coordinator) keyLockOf(k types.SegmentKey) *keyLock {
	l := c.mu.keys[k]
	if l == nil {
		l = &keyLock{}
		c.mu.keys[k] = l
	}
	return l
}

func (c *Coordinator) unlockKey(k types.SegmentKey, l *keyLock) {
	l.mu.Unlock()
	c.mu.Lock()
	if l.refs--; l.refs == 0 {
		delete(c.mu.keys, k)
	}
	c.mu.Unlock()
}
