package server

import (
	"context"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// ReadBudgetHeld is how many bytes of the read budget are held.
func (s *Server) ReadBudgetHeld() int64 { return s.reads.held.Load() }

// ReadBudgetPeak is the most bytes of the read budget ever held at once.
func (s *Server) ReadBudgetPeak() int64 { return s.reads.peak.Load() }

// ReadBudgetWaiting is how many requests wait for room in the read budget.
func (s *Server) ReadBudgetWaiting() int64 { return s.reads.waiting.Load() }

// HoldReadBudget takes n bytes of the read budget as a reader would, until
// release is called.
func (s *Server) HoldReadBudget(ctx context.Context, n int64) (release func(), err error) {
	h := s.reads.newHold(ctx)
	if err := h.wait(ctx, n); err != nil {
		return nil, err
	}
	return h.release, nil
}

// ReadBudgetStalled counts responses released after the stall timeout.
func (s *Server) ReadBudgetStalled() float64 { return testutil.ToFloat64(s.reads.stalled) }

// RoutePatterns are the "METHOD /path" patterns the HTTP handler registers.
func (s *Server) RoutePatterns() []string {
	var out []string
	for _, r := range s.routes() {
		out = append(out, r.pattern)
	}
	return out
}
