package server

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// healthService is grpc.health.v1.Health answering from Node.Ready, like
// /readyz: SERVING once the node is ready, NOT_SERVING before and once
// Shutdown started. It knows the empty service name and the two API
// services.
type healthService struct {
	grpc_health_v1.UnimplementedHealthServer
	s *Server
}

// watchPoll is how often Watch re-checks readiness.
const watchPoll = time.Second

func (h *healthService) status(service string) (grpc_health_v1.HealthCheckResponse_ServingStatus, bool) {
	switch service {
	case "", aof2v1.Log_ServiceDesc.ServiceName, aof2v1.Admin_ServiceDesc.ServiceName:
	default:
		return grpc_health_v1.HealthCheckResponse_SERVICE_UNKNOWN, false
	}
	if h.s.ready() {
		return grpc_health_v1.HealthCheckResponse_SERVING, true
	}
	return grpc_health_v1.HealthCheckResponse_NOT_SERVING, true
}

func (h *healthService) Check(_ context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	st, ok := h.status(req.GetService())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "health: unknown service %q", req.GetService())
	}
	return &grpc_health_v1.HealthCheckResponse{Status: st}, nil
}

func (h *healthService) Watch(req *grpc_health_v1.HealthCheckRequest, ss grpc.ServerStreamingServer[grpc_health_v1.HealthCheckResponse]) error {
	ctx, cancel := h.s.untilStopped(ss.Context())
	defer cancel()
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	last := grpc_health_v1.HealthCheckResponse_ServingStatus(-1)
	for {
		st, _ := h.status(req.GetService())
		if st != last {
			if err := ss.Send(&grpc_health_v1.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			if h.s.stopping() {
				// The final word for a watcher: not serving any more.
				return ss.Send(&grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_NOT_SERVING})
			}
			return ctx.Err()
		}
	}
}
