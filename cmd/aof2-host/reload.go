package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync/atomic"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/host/node"
	"github.com/aof2/aof2/host/server"
)

// reloadable are the keys a SIGHUP applies to the running host; a change
// to any other key is reported as needing a restart. The TLS certificate
// and key, and the token file's content, are re-read at every SIGHUP
// (rotation) as long as their paths stay.
var reloadable = map[string]bool{
	"log_level":              true,
	"tier0.max_bytes":        true,
	"tier0.stream_max_bytes": true,
	"tier0.stream.max_bytes": true,
	"tier1.max_bytes":        true,
	"listen.auth_token":      true,
	"listen.auth_token_file": true,
}

// reloader applies a reread configuration to a running host (SIGHUP). It
// is used by serve's goroutine only.
type reloader struct {
	args    []string       // serve's command line, reread as at start
	started *config.Config // the configuration the host started with
	last    *config.Config // the last one applied
	logger  hclog.Logger
	node    *node.Node
	srv     *server.Server
	cert    *certReloader // nil without TLS
}

// reload rereads the configuration and applies what may change; it logs
// what it did and what needs a restart. A configuration that does not
// load is refused whole: the running one stays.
func (r *reloader) reload() {
	fs := flag.NewFlagSet("aof2-host serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("takeover", false, "") // serve's own flag: taken at start only
	next, err := config.Load(r.args, os.Environ(), config.WithFlagSet(fs))
	if err != nil {
		r.logger.Error("configuration reload refused: the running configuration stays", "error", err)
		return
	}
	var applied, restart, failed []string
	for _, key := range config.Changed(r.started, next) {
		if !reloadable[key] {
			restart = append(restart, key)
		}
	}
	fail := func(what string, err error) {
		failed = append(failed, what)
		r.logger.Error("configuration reload: could not apply", "key", what, "error", err)
	}
	for _, key := range config.Changed(r.last, next) {
		if !reloadable[key] {
			continue
		}
		if err := r.apply(key, next); err != nil {
			fail(key, err)
			continue
		}
		applied = append(applied, key)
	}
	if next.Token() != r.last.Token() && !slices.Contains(applied, "listen.auth_token") && !slices.Contains(applied, "listen.auth_token_file") {
		// The token file's content changed under the same path.
		if err := r.srv.SetToken(next.Token()); err != nil {
			fail("listen.auth_token_file", err)
		} else {
			applied = append(applied, "listen.auth_token_file (content)")
		}
	}
	if r.cert != nil && next.Listen.TLS == r.started.Listen.TLS {
		if err := r.cert.reload(next); err != nil {
			fail("listen.tls.cert_file", err)
		} else {
			applied = append(applied, "listen.tls certificate (reread)")
		}
	}
	r.last = next
	args := []any{"applied", applied, "needs_restart", restart}
	if len(failed) > 0 {
		args = append(args, "failed", failed)
	}
	r.logger.Info("configuration reloaded", args...)
}

// apply makes one reloadable key's new value take effect.
func (r *reloader) apply(key string, c *config.Config) error {
	switch key {
	case "log_level":
		r.logger.SetLevel(c.HCLogLevel())
		return nil
	case "listen.auth_token", "listen.auth_token_file":
		return r.srv.SetToken(c.Token())
	}
	coord := r.node.Coordinator()
	if coord == nil {
		return fmt.Errorf("no coordinator runs on this node (a replica or a cluster member keeps its budgets until restarted)")
	}
	switch key {
	case "tier0.max_bytes":
		return coord.Budget().SetMaxBytes(c.Tier0.MaxBytes)
	case "tier0.stream_max_bytes":
		return coord.Budget().SetStreamMaxBytes(c.Tier0.StreamMaxBytes)
	case "tier0.stream.max_bytes":
		b := coord.Budget()
		for id := range b.StreamLimits() {
			if _, ok := c.Tier0.Streams[uint64(id)]; !ok {
				b.ClearStreamLimit(id)
			}
		}
		for _, id := range slices.Sorted(maps.Keys(c.Tier0.Streams)) {
			if err := b.SetStreamLimit(types.StreamID(id), c.Tier0.Streams[id]); err != nil {
				return err
			}
		}
		return nil
	case "tier1.max_bytes":
		coord.Warm().SetMaxBytes(c.Tier1.MaxBytes)
		return nil
	}
	return fmt.Errorf("%s is not reloadable", key)
}

// certReloader serves the client API's certificate from what the last
// load read, so that a SIGHUP after the files were replaced (a renewed
// certificate) takes effect for new connections.
type certReloader struct {
	cert atomic.Pointer[tls.Certificate]
}

// wrap returns cfg serving the reloader's certificate.
func (r *certReloader) wrap(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	r.cert.Store(&c.Certificates[0])
	c.Certificates = nil
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cert.Load(), nil }
	return c
}

func (r *certReloader) reload(c *config.Config) error {
	cfg, err := c.TLSConfig()
	if err != nil {
		return err
	}
	r.cert.Store(&cfg.Certificates[0])
	return nil
}

// sdNotify tells systemd (Type=notify, deploy/systemd/aof2.service) about
// readiness, reloads and stopping; without $NOTIFY_SOCKET it does nothing.
func sdNotify(logger hclog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		logger.Warn("sd_notify failed", "state", state, "error", err)
	}
}

// monotonicUsec is the MONOTONIC_USEC field systemd wants with RELOADING=1.
func monotonicUsec() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return fmt.Sprintf("MONOTONIC_USEC=%d", ts.Sec*1_000_000+ts.Nsec/1_000)
}
