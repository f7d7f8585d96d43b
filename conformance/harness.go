package conformance

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

// Harness starts the backend under test. Each Start returns a configured
// and probed Target; the suite starts a few (one per chunk size it
// negotiates) and closes each.
type Harness interface {
	Name() string
	Start(ctx context.Context, opts StartOptions) (*Target, error)
}

// StartOptions vary a Start.
type StartOptions struct {
	// ChunkSize is proposed in Configure (0: the default).
	ChunkSize uint32
	// ExtraConfig is merged over the harness's own settings.
	ExtraConfig map[string]string
}

// Target is a backend ready for the suite.
type Target struct {
	// Backend is the contract as the host sees it.
	Backend *pluginapi.Client
	// Raw reaches the plugin without the host-side checks, to prove the
	// plugin validates on its own.
	Raw pb.BackendClient
	// Direct, when set (the InProcess harness), is the Backend itself with
	// neither the host's nor the gRPC server's checks in front of it: what
	// core/tier2 and coordinator tests call when they use a backend
	// in-process. The suite checks it validates on its own.
	Direct    pluginapi.Backend
	Info      pluginapi.Info
	ChunkSize uint32
	// StagingDir, when set, is where PutFile/GetFile files must live.
	StagingDir string
	close      func() error
}

// Close ends the Target (kills a plugin process).
func (t *Target) Close() error {
	if t.close == nil {
		return nil
	}
	return t.close()
}

func mergeConfig(base, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, extra)
	return out
}

// InProcess serves a backend from New in the test process over a real
// gRPC connection (pluginhost.ServeInProcess), so coverage and debuggers
// reach it. New is called once per Start.
type InProcess struct {
	New        func() (pluginapi.Backend, error)
	Config     map[string]string
	StagingDir string
	Logger     hclog.Logger
}

func (h *InProcess) Name() string { return "in-process" }

func (h *InProcess) Start(ctx context.Context, opts StartOptions) (*Target, error) {
	b, err := h.New()
	if err != nil {
		return nil, err
	}
	ip, err := pluginhost.ServeInProcess(b, h.Logger)
	if err != nil {
		closeBackend(b)
		return nil, err
	}
	stop := func() error {
		err := ip.Close()
		closeBackend(b)
		return err
	}
	info, chunk, err := ip.Setup(ctx, pluginapi.ConfigureRequest{Config: mergeConfig(h.Config, opts.ExtraConfig), ChunkSize: opts.ChunkSize, StagingDir: h.StagingDir})
	if err != nil {
		_ = stop()
		return nil, err
	}
	return &Target{Backend: ip.Client, Raw: ip.Raw(), Direct: b, Info: info, ChunkSize: chunk, StagingDir: h.StagingDir, close: stop}, nil
}

// closeBackend releases an in-process backend that holds resources.
func closeBackend(b pluginapi.Backend) {
	if c, ok := b.(io.Closer); ok {
		_ = c.Close()
	}
}

// Binary launches a plugin executable exactly as the host does
// (pluginhost.Launch: handshake, AutoMTLS unless disabled, minimal
// environment, GetInfo → Configure → Probe), once per Start.
type Binary struct {
	Path   string
	Config map[string]string
	// Launch is a template: Path, Configure and Reattach are set from the
	// fields above.
	Launch     pluginhost.LaunchConfig
	StagingDir string
}

func (h *Binary) Name() string { return "binary" }

func (h *Binary) Start(ctx context.Context, opts StartOptions) (*Target, error) {
	cfg := h.Launch
	cfg.Path = h.Path
	cfg.Configure = pluginapi.ConfigureRequest{Config: mergeConfig(h.Config, opts.ExtraConfig), ChunkSize: opts.ChunkSize, StagingDir: h.StagingDir}
	return launchTarget(ctx, cfg, h.StagingDir)
}

// Reattach connects to an already-running plugin served with
// pluginapi.ServeReattachable (e.g. a plugin binary started with -debug).
// Close disconnects and leaves the plugin running.
type Reattach struct {
	Addr       pluginapi.Reattach
	Config     map[string]string
	StagingDir string
}

func (h *Reattach) Name() string { return "reattach" }

func (h *Reattach) Start(ctx context.Context, opts StartOptions) (*Target, error) {
	a, err := pluginhost.Attach(h.Addr)
	if err != nil {
		return nil, err
	}
	info, chunk, err := a.Setup(ctx, pluginapi.ConfigureRequest{Config: mergeConfig(h.Config, opts.ExtraConfig), ChunkSize: opts.ChunkSize, StagingDir: h.StagingDir})
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	return &Target{Backend: a.Client, Raw: a.Raw(), Info: info, ChunkSize: chunk, StagingDir: h.StagingDir, close: a.Close}, nil
}

func launchTarget(ctx context.Context, cfg pluginhost.LaunchConfig, staging string) (*Target, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "conformance", Level: hclog.Warn})
	}
	p, err := pluginhost.Launch(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Target{
		Backend: p.Client, Raw: p.Raw(), Info: p.Advertised, ChunkSize: p.ChunkSize, StagingDir: staging,
		close: func() error {
			start := time.Now()
			p.Kill()
			switch {
			case !p.Exited():
				return fmt.Errorf("%s", RuleExit.msg("plugin %s: got a process still running after Kill, want it to exit", p.Name()))
			case time.Since(start) >= 2*time.Second:
				// go-plugin waits 2s for a graceful exit, then SIGKILLs.
				return fmt.Errorf("%s", RuleExit.msg("plugin %s: got a process that ignored the host's shutdown and was killed after %s, want a prompt exit", p.Name(), time.Since(start).Round(time.Millisecond)))
			}
			return nil
		},
	}, nil
}
