package pluginapi

import (
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/aof2/aof2/internal/logfields"
)

// ServeOptions tune Serve. The zero value is what a plugin main wants.
type ServeOptions struct {
	// Name is kept for plugins built against earlier releases.
	//
	// Deprecated: unused; the host names a plugin's log lines after its
	// binary (the plugin's own logger has no name, so that the line keeps
	// one module).
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
	// JSON so the host's go-plugin client re-logs each line at its level,
	// under its own logger for the plugin (named after the binary). No
	// name here: it would come back as a second, conflicting @module.
	return hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info})
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

// closeTimeout bounds a backend's Close at exit, inside the 2 s go-plugin
// gives a plugin to exit before it sends SIGKILL.
const closeTimeout = 1500 * time.Millisecond

// closeBackend gives a backend that holds resources a chance to release
// them (e.g. abort multipart uploads) before the process exits.
func closeBackend(log hclog.Logger, b Backend) {
	c, ok := b.(io.Closer)
	if !ok {
		return
	}
	done := make(chan error, 1)
	go func() { done <- c.Close() }() // abandoned at exit if it hangs
	select {
	case err := <-done:
		if err != nil {
			log.Warn("closing backend", "error", err)
		}
	case <-time.After(closeTimeout):
		log.Warn("backend did not close in time; exiting anyway", logfields.Duration("timeout", closeTimeout)...)
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
