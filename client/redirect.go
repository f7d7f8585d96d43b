package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Following a cluster's leader (docs/adr-replication.md). A follower
// answers appends, seals and linearizable reads with NOT_LEADER, naming
// the leader when it knows it; nothing of such a request was applied, so
// resending it is safe. The client resends it to the leader, and sends
// every later call there first, until that connection fails.
const (
	// maxRedirects bounds the resends to a named leader per call.
	maxRedirects = 3
	// maxLeaderWait bounds the time one call waits for an election (no
	// leader named), in pauses doubling from leaderBackoff up to
	// leaderBackoffMax. An election takes one to two election timeouts,
	// more when a vote splits; the small cap keeps the time between the
	// new leader's first moment and the client's next try short (a 1 s
	// cap added up to a second to failovers).
	maxLeaderWait    = 5 * time.Second
	leaderBackoff    = 20 * time.Millisecond
	leaderBackoffMax = 200 * time.Millisecond
)

// redirector is the unary interceptor that follows NOT_LEADER. Its
// connections to leaders are closed with the client.
type redirector struct {
	dial func(addr string) (*grpc.ClientConn, error)

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn // guarded by mu; by gRPC address
	leader string                      // guarded by mu; "" is the dialed address
	closed bool                        // guarded by mu
}

func newRedirector(dial func(string) (*grpc.ClientConn, error)) *redirector {
	return &redirector{dial: dial, conns: map[string]*grpc.ClientConn{}}
}

func (r *redirector) unary(ctx context.Context, method string, req, reply any, seed *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	cc, addr := r.current(seed)
	redirects, waits, waited := 0, 0, time.Duration(0)
	for {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if addr != "" && status.Code(err) == codes.Unavailable {
			r.forget(addr) // the leader went away: the next call starts from the seed
		}
		leader, ok := notLeader(err)
		switch {
		case !ok:
			return err
		case leader != "" && leader != addr && redirects < maxRedirects:
			redirects++
			next, derr := r.conn(leader)
			if derr != nil {
				return err
			}
			cc, addr = next, leader
		case waited < maxLeaderWait:
			// An election, or a stale leader: wait, then ask the seed.
			d := min(leaderBackoff<<min(waits, 16), leaderBackoffMax)
			waits++
			waited += d
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
				return err
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
			r.forget(addr)
			cc, addr = seed, ""
		default:
			return err
		}
	}
}

// notLeader returns the leader's gRPC address a NOT_LEADER names.
func notLeader(err error) (string, bool) {
	var e *Error
	if !errors.As(fromStatus(err), &e) || !errors.Is(e, ErrNotLeader) || e.Appended > 0 {
		return "", false // part of it was appended: resending would repeat that part
	}
	return e.Leader.GRPC, true
}

// current is where a call goes first: the last leader seen, else the seed.
func (r *redirector) current(seed *grpc.ClientConn) (*grpc.ClientConn, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[r.leader]; ok && r.leader != "" {
		return c, r.leader
	}
	return seed, ""
}

// conn returns a connection to addr, dialling it once, and makes addr the
// leader later calls go to.
func (r *redirector) conn(addr string) (*grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("aof2 client: closed")
	}
	c, ok := r.conns[addr]
	if !ok {
		var err error
		if c, err = r.dial(addr); err != nil {
			return nil, err
		}
		r.conns[addr] = c
	}
	r.leader = addr
	return c, nil
}

func (r *redirector) forget(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leader == addr {
		r.leader = ""
	}
}

func (r *redirector) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for _, c := range r.conns {
		errs = append(errs, c.Close())
	}
	clear(r.conns)
	return errors.Join(errs...)
}
