package host

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aof2/aof2/pluginapi"
)

// Attached is a host-side connection to a backend served without
// go-plugin.
type Attached struct {
	*pluginapi.Client
	conn *grpc.ClientConn
}

// Attach dials a served backend (no TLS: the socket's permissions are the
// guard).
func Attach(r pluginapi.Reattach) (*Attached, error) {
	target := r.Address
	if r.Network == "unix" {
		target = "unix://" + r.Address
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, pluginapi.DialOptions()...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dialing backend at %s: %w", r.Address, err)
	}
	return &Attached{Client: pluginapi.NewClient(conn), conn: conn}, nil
}

// Setup runs what Launch runs after the handshake: GetInfo → contract
// check → Configure → Probe, returning the Info and negotiated chunk size.
func (a *Attached) Setup(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.Info, uint32, error) {
	info, err := a.Client.Info(ctx)
	if err != nil {
		return pluginapi.Info{}, 0, fmt.Errorf("GetInfo: %w", err)
	}
	if err := CheckInfo(info); err != nil {
		return info, 0, err
	}
	res, err := a.Client.Configure(ctx, req)
	if err != nil {
		return info, 0, fmt.Errorf("Configure: %w", err)
	}
	if err := a.Client.Probe(ctx, pluginapi.ProbeRequest{}); err != nil {
		return info, 0, fmt.Errorf("Probe: %w", err)
	}
	return info, res.ChunkSize, nil
}

// Close closes the connection; the backend keeps running.
func (a *Attached) Close() error { return a.conn.Close() }

// InProcess is a Backend served and attached inside this process: tests,
// benchmarks and the conformance suite's in-process harness use it so
// that coverage and debuggers reach the backend while every call still
// crosses a real gRPC connection.
type InProcess struct {
	*Attached
	served *pluginapi.Served
}

// ServeInProcess serves b and attaches to it.
func ServeInProcess(b pluginapi.Backend, logger hclog.Logger) (*InProcess, error) {
	s, err := pluginapi.ServeSocket(b, logger)
	if err != nil {
		return nil, err
	}
	a, err := Attach(s.Addr)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &InProcess{Attached: a, served: s}, nil
}

// Close closes the connection and stops the server.
func (p *InProcess) Close() error {
	err := p.Attached.Close()
	p.served.Close()
	return err
}
