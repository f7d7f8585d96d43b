package pluginapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ServeOptions tune Serve. The zero value is what a plugin main wants.
type ServeOptions struct {
	// Name names the logger (default "backend").
	Name string
	// Logger overrides the JSON-to-stderr hclog logger. It must never
	// write to stdout: stdout carries the handshake.
	Logger hclog.Logger
	// ParentPollInterval is how often the plugin checks that the process
	// that launched it is still alive (default 1s).
	ParentPollInterval time.Duration
}

func (o *ServeOptions) logger() hclog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	name := o.Name
	if name == "" {
		name = PluginName
	}
	// JSON so the host's go-plugin client re-logs each line at its level.
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: os.Stderr, JSONFormat: true, Level: hclog.Info})
}

// Serve runs b as a plugin process and never returns. Call it from main
// before anything writes to stdout. It negotiates contract major
// ContractMajor, serves gRPC with ServerOptions (16 MiB messages, large
// flow-control windows), logs JSON through hclog to stderr, and exits when
// the host closes the connection or the parent process dies.
func Serve(b Backend, opts ServeOptions) {
	log := opts.logger()
	srv := NewServer(b, log)
	stop := watchParent(log, b, opts.ParentPollInterval)
	defer stop()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(srv),
		GRPCServer:       newGRPCServer,
		Logger:           log,
	})
	closeBackend(log, b)
	os.Exit(0)
}

func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, ServerOptions()...)...)
}

// Reattach is what a host needs to attach to an already-running plugin
// (ServeReattachable). It is JSON so it can cross a terminal or a file.
type Reattach struct {
	Network string `json:"network"`
	Address string `json:"address"`
	Pid     int    `json:"pid"`
}

func (r Reattach) config() (*plugin.ReattachConfig, error) {
	var addr net.Addr
	var err error
	switch r.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Address)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Address)
	default:
		err = fmt.Errorf("unknown network %q", r.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("reattach address: %w", err)
	}
	return &plugin.ReattachConfig{
		Protocol: plugin.ProtocolGRPC, ProtocolVersion: ContractMajor,
		Addr: addr, Pid: r.Pid, Test: true,
	}, nil
}

// ParseReattach decodes a Reattach from JSON.
func ParseReattach(s string) (Reattach, error) {
	var r Reattach
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("reattach config: %w", err)
	}
	return r, nil
}

// ServeReattachable serves b in the current process without the go-plugin
// handshake until ctx is done, for debugging and for the conformance
// suite's reattach mode. ready receives the address to attach to once the
// server listens. No cookie is checked, so never use it in production.
func ServeReattachable(ctx context.Context, b Backend, opts ServeOptions, ready func(Reattach)) error {
	log := opts.logger()
	srv := NewServer(b, log)
	ch := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(srv),
		GRPCServer:       newGRPCServer,
		Logger:           log,
		Test:             &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: ch, CloseCh: closed},
	})
	select {
	case cfg := <-ch:
		ready(Reattach{Network: cfg.Addr.Network(), Address: cfg.Addr.String(), Pid: cfg.Pid})
	case <-closed:
		return fmt.Errorf("plugin server stopped before listening")
	}
	<-closed
	return nil
}

// closeBackend gives a backend that holds resources a chance to release
// them (e.g. abort multipart uploads) before the process exits.
func closeBackend(log hclog.Logger, b Backend) {
	c, ok := b.(io.Closer)
	if !ok {
		return
	}
	if err := c.Close(); err != nil {
		log.Warn("closing backend", "error", err)
	}
}

// watchParent exits the process when the parent that launched it goes
// away, so a host killed with SIGKILL leaves no orphan plugins even where
// the host could not set a parent-death signal. It returns a stop func.
func watchParent(log hclog.Logger, b Backend, every time.Duration) func() {
	if every <= 0 {
		every = time.Second
	}
	parent := os.Getppid()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if os.Getppid() != parent {
					log.Warn("parent process is gone; exiting", "parent_pid", parent)
					closeBackend(log, b)
					os.Exit(3)
				}
			}
		}
	}()
	return func() { close(done) }
}
