package pluginapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Reattach is the address of a backend served without go-plugin
// (ServeSocket, ServeReattachable), as JSON so it can cross a terminal or
// a file. Attach dials it.
type Reattach struct {
	Network string `json:"network"`
	Address string `json:"address"`
	Pid     int    `json:"pid,omitempty"`
}

// ParseReattach decodes a Reattach from JSON.
func ParseReattach(s string) (Reattach, error) {
	var r Reattach
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("reattach config: %w", err)
	}
	if r.Network != "unix" && r.Network != "tcp" {
		return r, fmt.Errorf("reattach config: network must be unix or tcp, not %q", r.Network)
	}
	return r, nil
}

// Served is a Backend served on a private Unix socket in this process,
// with the same adapter and transport options as a plugin process.
type Served struct {
	Addr Reattach
	srv  *grpc.Server
	dir  string
	wg   sync.WaitGroup
	once sync.Once
}

// ServeSocket serves b until Close.
func ServeSocket(b Backend, logger hclog.Logger) (*Served, error) {
	dir, err := os.MkdirTemp("", "aof2-plugin-*")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "backend.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &Served{Addr: Reattach{Network: "unix", Address: sock, Pid: os.Getpid()}, srv: grpc.NewServer(ServerOptions()...), dir: dir}
	RegisterServer(s.srv, NewServer(b, logger))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(lis)
	}()
	return s, nil
}

// Close stops the server, cancelling in-flight calls, and removes the socket.
func (s *Served) Close() {
	s.once.Do(func() {
		s.srv.Stop()
		s.wg.Wait()
		_ = os.RemoveAll(s.dir)
	})
}

// ServeReattachable serves b on a Unix socket until ctx is done, for
// debugging a plugin by hand and for the conformance suite's reattach
// mode; ready receives the address. There is no handshake and no cookie:
// never use it in production.
func ServeReattachable(ctx context.Context, b Backend, opts ServeOptions, ready func(Reattach)) error {
	s, err := ServeSocket(b, opts.logger())
	if err != nil {
		return err
	}
	defer s.Close()
	ready(s.Addr)
	<-ctx.Done()
	return nil
}

// Attached is a host-side connection to a backend served without
// go-plugin.
type Attached struct {
	*Client
	conn *grpc.ClientConn
}

// Attach dials a served backend (no TLS: the socket's permissions are the
// guard).
func Attach(r Reattach) (*Attached, error) {
	target := r.Address
	if r.Network == "unix" {
		target = "unix://" + r.Address
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, DialOptions()...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dialing backend at %s: %w", r.Address, err)
	}
	return &Attached{Client: NewClient(conn), conn: conn}, nil
}

// Setup runs what Launch runs after the handshake: GetInfo → contract
// check → Configure → Probe, returning the Info and negotiated chunk size.
func (a *Attached) Setup(ctx context.Context, req ConfigureRequest) (Info, uint32, error) {
	info, err := a.Client.Info(ctx)
	if err != nil {
		return Info{}, 0, fmt.Errorf("GetInfo: %w", err)
	}
	if err := CheckInfo(info); err != nil {
		return info, 0, err
	}
	res, err := a.Client.Configure(ctx, req)
	if err != nil {
		return info, 0, fmt.Errorf("Configure: %w", err)
	}
	if err := a.Client.Probe(ctx, ProbeRequest{}); err != nil {
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
	served *Served
}

// ServeInProcess serves b and attaches to it.
func ServeInProcess(b Backend, logger hclog.Logger) (*InProcess, error) {
	s, err := ServeSocket(b, logger)
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
