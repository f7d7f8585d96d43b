package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/host/dump"
)

// errUnauthenticated is what a running host answers to a missing or wrong
// token (exit 3).
var errUnauthenticated = client.ErrUnauthenticated

// target says which node an admin command talks to: a running host
// (-addr, through the client API) or a data directory (offline).
type target struct {
	addr, token, tokenFile string
	dataDir, config        string
	connectTimeout         time.Duration
}

func targetFlags(fs *flag.FlagSet) *target {
	t := &target{}
	fs.StringVar(&t.addr, "addr", os.Getenv("AOF2_ADDR"), "gRPC address of a running host (env AOF2_ADDR); empty: work offline on the data directory")
	fs.StringVar(&t.token, "token", os.Getenv("AOF2_TOKEN"), "bearer token for -addr (env AOF2_TOKEN)")
	fs.StringVar(&t.tokenFile, "token-file", "", "read the bearer token from this file")
	fs.StringVar(&t.dataDir, "data-dir", "", "data directory when offline (default: the config's data_dir, else ./data)")
	fs.StringVar(&t.config, "config", "", "host config file to take data_dir (and the plugin) from")
	fs.DurationVar(&t.connectTimeout, "connect-timeout", 10*time.Second, "how long to wait for the host at -addr to accept the connection")
	return t
}

func (t *target) online() bool { return t.addr != "" }

// bearer is the token -token or -token-file gives ("" for none).
func (t *target) bearer() (string, error) {
	if t.tokenFile == "" {
		return t.token, nil
	}
	b, err := os.ReadFile(t.tokenFile)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// dial connects to the running host.
func (t *target) dial(ctx context.Context, opts ...client.Option) (*client.Client, error) {
	tok, err := t.bearer()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	dctx, cancel := context.WithTimeout(ctx, t.connectTimeout)
	defer cancel()
	c, err := client.Dial(dctx, t.addr, opts...)
	if err != nil && ctx.Err() == nil && dctx.Err() != nil {
		return nil, fmt.Errorf("no host accepted a connection at %s within %s (-connect-timeout): %w", t.addr, t.connectTimeout, err)
	}
	return c, err
}

// localDir is the data directory for offline work; it must exist.
func (t *target) localDir() (string, error) {
	dir := t.dataDir
	if dir == "" {
		cfg, err := loadConfigFile(t.config, "")
		if err != nil {
			return "", err
		}
		dir = cfg.DataDir
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	return dir, nil
}

// dump fetches the dump from the host, or builds it from the data
// directory.
func (t *target) dump(ctx context.Context) (*dump.Dump, error) {
	if !t.online() {
		dir, err := t.localDir()
		if err != nil {
			return nil, err
		}
		return dump.FromDataDir(ctx, nil, dir)
	}
	c, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	b, err := c.Dump(ctx)
	if err != nil {
		return nil, err
	}
	var d dump.Dump
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode the host's dump: %w", err)
	}
	return &d, nil
}
