package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	timeout                time.Duration // per unary call; 0 is none
	tls                    clientTLS
}

// clientTLS are the admin commands' TLS flags for -addr.
type clientTLS struct {
	on                bool // -tls: TLS even to a loopback address
	plaintext         bool // -plaintext: no TLS even beyond loopback
	caFile            string
	certFile, keyFile string
	serverName        string
}

func targetFlags(fs *flag.FlagSet) *target {
	t := &target{}
	fs.StringVar(&t.addr, "addr", os.Getenv("AOF2_ADDR"), "gRPC address of a running host (env AOF2_ADDR); empty: work offline on the data directory")
	fs.StringVar(&t.token, "token", os.Getenv("AOF2_TOKEN"), "bearer token for -addr (env AOF2_TOKEN)")
	fs.StringVar(&t.tokenFile, "token-file", "", "read the bearer token from this file")
	fs.StringVar(&t.dataDir, "data-dir", "", "data directory when offline (default: the config's data_dir, else ./data)")
	fs.StringVar(&t.config, "config", "", "host config file to take data_dir (and the plugin) from")
	fs.DurationVar(&t.connectTimeout, "connect-timeout", 10*time.Second, "how long to wait for the host at -addr to accept the connection")
	fs.DurationVar(&t.timeout, "timeout", time.Minute, "bound on each request to the host at -addr (streams of progress excepted); 0 waits as long as the host takes")
	fs.BoolVar(&t.tls.on, "tls", false, "speak TLS to -addr even on loopback (beyond loopback TLS is the default; implied by the other -tls-* flags)")
	fs.BoolVar(&t.tls.plaintext, "plaintext", false, "no TLS to -addr even beyond loopback")
	fs.StringVar(&t.tls.caFile, "tls-ca-file", "", "PEM bundle of the CA that signed the host's certificate (default: the system roots)")
	fs.StringVar(&t.tls.certFile, "tls-cert-file", "", "PEM client certificate, for a host that requires one (listen.tls.client_ca_file)")
	fs.StringVar(&t.tls.keyFile, "tls-key-file", "", "PEM private key of -tls-cert-file")
	fs.StringVar(&t.tls.serverName, "tls-server-name", "", "name to verify the host's certificate against (default: the host part of -addr)")
	return t
}

// clientOptions are the client options -tls* and -plaintext ask for.
func (c *clientTLS) clientOptions() ([]client.Option, error) {
	wantTLS := c.on || c.caFile != "" || c.certFile != "" || c.keyFile != "" || c.serverName != ""
	switch {
	case wantTLS && c.plaintext:
		return nil, usagef("-plaintext contradicts -tls and the -tls-* flags")
	case c.plaintext:
		return []client.Option{client.WithInsecure()}, nil
	case !wantTLS:
		return nil, nil // the client's default: plaintext on loopback, TLS beyond
	case (c.certFile == "") != (c.keyFile == ""):
		return nil, usagef("-tls-cert-file and -tls-key-file go together")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca-file %s holds no PEM certificate", c.caFile)
		}
	}
	if c.certFile != "" {
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return []client.Option{client.WithTLS(cfg)}, nil
}

// callTimeout bounds each unary call that has no earlier deadline.
func callTimeout(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); ok || d <= 0 {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		err := invoker(ctx, method, req, reply, cc, opts...)
		if status.Code(err) == codes.DeadlineExceeded {
			err = fmt.Errorf("%s: no answer within %s (-timeout): %w", method, d, err)
		}
		return err
	}
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
	topts, err := t.tls.clientOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, topts...)
	opts = append(opts, client.WithDialOptions(grpc.WithChainUnaryInterceptor(callTimeout(t.timeout))))
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
