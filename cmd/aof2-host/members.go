package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/host/config"
)

// memberClientOptions is how a cluster member dials the others' client
// APIs (to announce itself, and to copy records a Raft snapshot finds
// missing): the members share one API setup, so it sends its own token,
// speaks TLS when its own API does — trusting the system roots and
// listen.tls.client_ca_file, presenting its own certificate (which an
// mTLS peer asks for) — and plaintext when its own API is plaintext.
func memberClientOptions(cfg *config.Config) ([]client.Option, error) {
	var opts []client.Option
	if tok := cfg.Token(); tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	if !cfg.TLSEnabled() {
		return append(opts, client.WithInsecure()), nil
	}
	t := cfg.Listen.TLS
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster peers: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster peers: %s holds no PEM certificate", t.ClientCAFile)
		}
		tc.RootCAs = roots
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster peers: %w", err)
	}
	tc.Certificates = []tls.Certificate{cert}
	return append(opts, client.WithTLS(tc)), nil
}
