package tier1

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// job runs on a pool worker with a context that ends when the caller's
// context ends or the pool closes. A job that never runs (the pool closed
// first) is called with a non-nil reject error instead, so every
// submitted job reports exactly once.
type job func(ctx context.Context, reject error)

type queued struct {
	ctx context.Context
	run job
}

// pool is a fixed set of workers draining a bounded queue. Every goroutine
// it starts is stopped and waited for by close.
type pool struct {
	queue chan queued
	done  chan struct{} // closed by close
	base  context.Context
	stop  context.CancelFunc
	depth prometheus.Gauge
	wg    sync.WaitGroup

	mu     sync.RWMutex // submitters hold it shared while enqueueing
	closed bool
	once   sync.Once
}

func newPool(workers, depth int, gauge prometheus.Gauge) *pool {
	base, stop := context.WithCancel(context.Background())
	p := &pool{queue: make(chan queued, depth), done: make(chan struct{}), base: base, stop: stop, depth: gauge}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

func (p *pool) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case q := <-p.queue:
			p.depth.Dec()
			select {
			case <-p.done: // closing: a queued job is rejected, not started
				q.run(q.ctx, ErrClosed)
				return
			default:
			}
			p.run(q)
		}
	}
}

func (p *pool) run(q queued) {
	ctx, cancel := context.WithCancel(q.ctx)
	defer cancel()
	stop := context.AfterFunc(p.base, cancel)
	defer stop()
	q.run(ctx, nil)
}

// submit enqueues j. With wait false it never blocks and returns ErrBusy
// when the queue is full; with wait true it waits for room until ctx ends.
func (p *pool) submit(ctx context.Context, j job, wait bool) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	q := queued{ctx: ctx, run: j}
	if !wait {
		select {
		case p.queue <- q:
			p.depth.Inc()
			return nil
		default:
			return ErrBusy
		}
	}
	select {
	case p.queue <- q:
		p.depth.Inc()
		return nil
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close cancels running jobs, stops the workers, waits for them, and
// rejects every job still queued.
func (p *pool) close() {
	p.once.Do(p.shutdown)
}

func (p *pool) shutdown() {
	// Wake blocked submitters and cancel running jobs first: a submitter
	// holds mu shared while it waits for room. done closes before the
	// cancellation so that a worker freed by it sees done and rejects
	// the queued jobs instead of starting one.
	close(p.done)
	p.stop()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	for {
		select {
		case q := <-p.queue:
			p.depth.Dec()
			q.run(q.ctx, ErrClosed)
		default:
			return
		}
	}
}
