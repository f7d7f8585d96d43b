package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
)

// Token is the bearer token clients must present ("" when none): the
// auth_token key, or the trimmed contents of auth_token_file as read at
// load time.
func (c *Config) Token() string { return c.token }

// TLSEnabled reports whether the client API serves TLS.
func (c *Config) TLSEnabled() bool { return c.Listen.TLS.CertFile != "" }

// TLSConfig builds the client API's TLS configuration from the tls block,
// or returns nil when TLS is off. A client CA makes it require and verify
// client certificates. It reads the files on each call.
func (c *Config) TLSConfig() (*tls.Config, error) {
	t := c.Listen.TLS
	if t.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, c.keyError("listen.tls.cert_file", t.CertFile, "cannot load the certificate and key_file", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, c.keyError("listen.tls.client_ca_file", t.ClientCAFile, "cannot read the client CA bundle", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, c.keyError("listen.tls.client_ca_file", t.ClientCAFile, "holds no PEM certificate", nil)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// keyError builds an Error for key's current value.
func (c *Config) keyError(key, value, reason string, err error) *Error {
	v := fmt.Sprintf("%q", value)
	if k := keyByPath[key]; value == "" || (k != nil && k.secret) {
		v = ""
	}
	return &Error{Key: key, Value: v, Source: c.Origin(key), Reason: reason, Err: err}
}

// validateListen checks the listeners, reads the token file and loads
// the TLS files, so that a bad path fails at start rather than at the
// first connection.
func (c *Config) validateListen() error {
	l := c.Listen
	var errs errorList
	if l.GRPC == "" && l.HTTP == "" {
		errs.add(c.keyError("listen.grpc", "", "listen.grpc and listen.http are both empty: the host would serve nothing", nil))
	}
	c.token = l.AuthToken
	switch {
	case l.AuthToken != "" && l.AuthTokenFile != "":
		errs.add(c.keyError("listen.auth_token_file", l.AuthTokenFile, "set auth_token or auth_token_file, not both", nil))
	case l.AuthTokenFile != "":
		b, err := os.ReadFile(l.AuthTokenFile)
		switch {
		case err != nil:
			errs.add(c.keyError("listen.auth_token_file", l.AuthTokenFile, "cannot read the token file", err))
		case strings.TrimSpace(string(b)) == "":
			errs.add(c.keyError("listen.auth_token_file", l.AuthTokenFile, "the token file is empty", nil))
		default:
			c.token = strings.TrimSpace(string(b))
		}
	}
	t := l.TLS
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		errs.add(c.keyError("listen.tls.key_file", t.KeyFile, "cert_file and key_file go together", nil))
	case t.ClientCAFile != "" && t.CertFile == "":
		errs.add(c.keyError("listen.tls.client_ca_file", t.ClientCAFile, "client certificates need TLS: set cert_file and key_file", nil))
	default:
		_, err := c.TLSConfig()
		errs.add(err)
	}
	if l.Admin != "" && !IsLoopback(l.Admin) && c.token == "" {
		errs.add(c.keyError("listen.admin", l.Admin, "serves runtime profiles (which can hold record bytes) beyond loopback: set listen.auth_token (or auth_token_file), or listen on loopback", nil))
	}
	if l.MetricsAuth && c.token == "" {
		errs.add(c.keyError("listen.metrics_auth", "true", "there is no token to require: set listen.auth_token or auth_token_file", nil))
	}
	if c.token == "" && !c.TLSEnabled() && !l.AllowInsecureRemote {
		for _, a := range []struct{ key, addr string }{{"listen.grpc", l.GRPC}, {"listen.http", l.HTTP}} {
			if a.addr != "" && !IsLoopback(a.addr) {
				errs.add(c.keyError(a.key, a.addr, "listens beyond loopback without protection: set listen.auth_token (or auth_token_file), configure listen.tls, or set listen.allow_insecure_remote = true", nil))
			}
		}
	}
	return errs.err()
}

// IsLoopback reports whether a host:port address listens on loopback
// only: localhost, 127.0.0.0/8 or ::1. An empty host (all interfaces) or
// any other name is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
