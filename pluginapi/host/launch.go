package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/aof2/aof2/pluginapi"
)

// DefaultStartTimeout bounds a plugin's handshake.
const DefaultStartTimeout = 10 * time.Second

// DefaultEnvAllowList are the host environment variables a plugin
// inherits; everything else must be passed explicitly in LaunchConfig.Env.
var DefaultEnvAllowList = []string{"PATH", "TMPDIR", "TZ", "LANG", "LC_ALL", "HOME", "GOCOVERDIR"}

// LaunchConfig says how to start (or attach to) a backend plugin and how to
// configure it. Every launch builds a fresh go-plugin ClientConfig from it.
type LaunchConfig struct {
	// Name names the plugin in logs and errors (default: the binary's name).
	Name string
	// Path is the plugin executable; Args are its arguments.
	Path string
	Args []string
	// SHA256 pins the binary (hex); a mismatch refuses to launch it.
	SHA256 string
	// DisableAutoMTLS turns off go-plugin's automatic mutual TLS. AutoMTLS
	// costs roughly half the streaming throughput; turning it off is
	// reasonable when the plugin's Unix socket is private to the user.
	DisableAutoMTLS bool
	// StartTimeout bounds the handshake (default DefaultStartTimeout).
	StartTimeout time.Duration
	// EnvAllowList names host variables passed through (default
	// DefaultEnvAllowList); Env adds explicit KEY=VALUE entries (e.g.
	// credentials).
	EnvAllowList []string
	Env          []string
	// Logger receives the host's and, named after the plugin, the plugin's
	// log lines (default: hclog's default logger).
	Logger hclog.Logger
	// Configure is sent to the plugin after the contract check.
	Configure pluginapi.ConfigureRequest
	// ProbeWriteKey, when set, makes the start-up Probe write, read back and
	// delete this key.
	ProbeWriteKey string
}

func (c *LaunchConfig) startTimeout() time.Duration {
	if c.StartTimeout > 0 {
		return c.StartTimeout
	}
	return DefaultStartTimeout
}

func (c *LaunchConfig) name() string {
	if c.Name != "" {
		return c.Name
	}
	if c.Path != "" {
		return filepath.Base(c.Path)
	}
	return "plugin"
}

// Plugin is a started, configured and probed backend plugin.
type Plugin struct {
	*pluginapi.Client
	// Advertised is what GetInfo returned at launch; ChunkSize the
	// negotiated size.
	Advertised pluginapi.Info
	ChunkSize  uint32

	gp   *plugin.Client
	name string
}

// Exited reports whether the plugin process has ended.
func (p *Plugin) Exited() bool { return p.gp.Exited() }

// Kill ends the plugin: a graceful close of the connection, then SIGKILL
// after two seconds. It blocks until the process is gone.
func (p *Plugin) Kill() { p.gp.Kill() }

// Name is the plugin's name in logs.
func (p *Plugin) Name() string { return p.name }

// Pid is the plugin process id (0 when unknown).
func (p *Plugin) Pid() int {
	if rc := p.gp.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Launch starts the plugin, checks the handshake and contract version,
// then runs GetInfo → contract check → Configure → Probe. On any failure
// the process is killed and the error says which step failed; start-up
// failures are a *StartError. The handshake is bounded by StartTimeout
// (go-plugin cannot abandon it earlier), the later steps by ctx.
func Launch(ctx context.Context, cfg LaunchConfig) (*Plugin, error) {
	name := cfg.name()
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.Default()
	}
	logger = logger.Named(name)
	stderr := &tailBuffer{max: 8}
	gcfg, err := clientConfig(ctx, cfg, logger, stderr)
	if err != nil {
		return nil, err
	}
	gp := plugin.NewClient(gcfg)
	p, err := handshake(gp, name, stderr)
	if err != nil {
		gp.Kill()
		return nil, err
	}
	if err := p.setUp(ctx, cfg); err != nil {
		gp.Kill()
		return nil, fmt.Errorf("plugin %q: %w", name, err)
	}
	logger.Info("plugin ready", "backend", p.Advertised.Name, "version", p.Advertised.Version,
		"contract", fmt.Sprintf("v%d.%d", p.Advertised.ContractMajor, p.Advertised.ContractMinor), "chunk_size", p.ChunkSize, "pid", p.Pid())
	return p, nil
}

func clientConfig(ctx context.Context, cfg LaunchConfig, logger hclog.Logger, stderr *tailBuffer) (*plugin.ClientConfig, error) {
	timeout := cfg.startTimeout()
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	gcfg := &plugin.ClientConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: hostPluginSets(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         !cfg.DisableAutoMTLS,
		StartTimeout:     timeout,
		Logger:           logger,
		Stderr:           stderr,
		GRPCDialOptions:  pluginapi.DialOptions(),
		SkipHostEnv:      true,
	}
	if cfg.Path == "" {
		return nil, &StartError{Plugin: cfg.name(), Kind: ErrLaunch, Detail: "no plugin path configured"}
	}
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = pluginEnv(cfg)
	setParentDeathSignal(cmd)
	gcfg.Cmd = cmd
	if cfg.SHA256 != "" {
		sum, err := hex.DecodeString(cfg.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, &pluginapi.Error{Code: pluginapi.CodeInvalidConfig, Message: fmt.Sprintf("plugin %q: sha256 pin is not 64 hex digits", cfg.name())}
		}
		gcfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	return gcfg, nil
}

// pluginEnv is the plugin's whole environment: the allow-listed host
// variables plus the explicit ones (go-plugin adds its handshake variables).
func pluginEnv(cfg LaunchConfig) []string {
	allow := cfg.EnvAllowList
	if allow == nil {
		allow = DefaultEnvAllowList
	}
	var env []string
	for _, k := range allow {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, cfg.Env...)
}

func handshake(gp *plugin.Client, name string, stderr *tailBuffer) (*Plugin, error) {
	proto, err := gp.Client()
	if err != nil {
		// go-plugin kills the process on a failed start and marks it exited
		// only after its stderr was read to the end: waiting for that gives
		// the classification the plugin's last words.
		if se := classifyStart(name, err, ""); se.Kind == ErrLaunch || se.Kind == ErrBinaryChecksum {
			return nil, se // no process was started
		}
		waitExited(gp, 2*time.Second)
		return nil, classifyStart(name, err, stderr.String())
	}
	if v := gp.NegotiatedVersion(); v != pluginapi.ContractMajor {
		return nil, &StartError{Plugin: name, Kind: ErrIncompatibleVersion, Detail: fmt.Sprintf("negotiated contract major %d, host speaks %d", v, pluginapi.ContractMajor)}
	}
	raw, err := proto.Dispense(pluginapi.PluginName)
	if err != nil {
		return nil, &StartError{Plugin: name, Kind: ErrBadHandshake, Detail: "dispense: " + err.Error(), Stderr: stderr.String()}
	}
	client, ok := raw.(*pluginapi.Client)
	if !ok {
		return nil, &StartError{Plugin: name, Kind: ErrBadHandshake, Detail: fmt.Sprintf("dispensed %T", raw)}
	}
	return &Plugin{Client: client, gp: gp, name: name}, nil
}

// hostPluginSets is VersionedPlugins on the host: every major it speaks.
func hostPluginSets() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{pluginapi.ContractMajor: {pluginapi.PluginName: &pluginapi.GRPCPlugin{}}}
}

func waitExited(gp *plugin.Client, limit time.Duration) {
	for deadline := time.Now().Add(limit); !gp.Exited() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// setUp runs GetInfo → contract check → Configure → Probe.
func (p *Plugin) setUp(ctx context.Context, cfg LaunchConfig) error {
	info, err := p.Client.Info(ctx)
	if err != nil {
		return fmt.Errorf("GetInfo: %w", err)
	}
	if err := CheckInfo(info); err != nil {
		return err
	}
	p.Advertised = info
	res, err := p.Client.Configure(ctx, cfg.Configure)
	if err != nil {
		return fmt.Errorf("Configure: %w", err)
	}
	p.ChunkSize = res.ChunkSize
	if err := p.Client.Probe(ctx, pluginapi.ProbeRequest{WriteKey: cfg.ProbeWriteKey}); err != nil {
		return fmt.Errorf("Probe: %w", err)
	}
	return nil
}

// CheckInfo verifies that an Info is one the host can work with.
func CheckInfo(info pluginapi.Info) error {
	var problems []string
	if info.ContractMajor != pluginapi.ContractMajor {
		problems = append(problems, fmt.Sprintf("contract major %d (host speaks %d)", info.ContractMajor, pluginapi.ContractMajor))
	}
	if info.Name == "" {
		problems = append(problems, "empty backend name")
	}
	l := info.Limits
	if l.MaxChunkSize != 0 && l.MaxChunkSize < pluginapi.MinChunkSize {
		problems = append(problems, fmt.Sprintf("max chunk size %d below the minimum %d", l.MaxChunkSize, pluginapi.MinChunkSize))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: GetInfo: %s", pluginapi.ErrContractViolation, strings.Join(problems, "; "))
}
