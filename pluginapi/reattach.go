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
)

// Reattach is the address of a backend served without go-plugin
// (ServeSocket, ServeReattachable), as JSON so it can cross a terminal or
// a file. The host package's Attach dials it.
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
