package host

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/go-plugin"
)

// Why a plugin failed to start. A *StartError matches exactly one of them.
var (
	// ErrStartTimeout: no handshake line within the start timeout (the
	// plugin hangs at start, or is a program that waits for input).
	ErrStartTimeout = errors.New("plugin did not complete the handshake within the start timeout")
	// ErrBadHandshake: the first line on the plugin's stdout is not a
	// go-plugin handshake (it printed to stdout before Serve, or it is not
	// a plugin).
	ErrBadHandshake = errors.New("plugin wrote something other than the handshake to stdout")
	// ErrCookieMismatch: the binary is a go-plugin plugin for another host
	// or handshake.
	ErrCookieMismatch = errors.New("plugin refused the handshake magic cookie")
	// ErrIncompatibleVersion: the plugin speaks no contract major the host
	// knows.
	ErrIncompatibleVersion = errors.New("plugin speaks an unsupported contract major version")
	// ErrExitedAtStart: the process ended before completing the handshake
	// (not a plugin, or it crashed at start).
	ErrExitedAtStart = errors.New("plugin exited before completing the handshake")
	// ErrBinaryChecksum: the binary's SHA-256 does not match the pin.
	ErrBinaryChecksum = errors.New("plugin binary does not match its pinned SHA-256")
	// ErrLaunch: the binary could not be executed at all.
	ErrLaunch = errors.New("plugin binary could not be executed")
)

// StartError explains a failed launch: which plugin, which kind of
// failure (Kind is one of the sentinels above), go-plugin's message and
// the last lines the plugin wrote to stderr.
type StartError struct {
	Plugin string
	Kind   error
	Detail string
	Stderr string
}

func (e *StartError) Error() string {
	msg := fmt.Sprintf("plugin %q: %v", e.Plugin, e.Kind)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Stderr != "" {
		msg += "; plugin stderr: " + e.Stderr
	}
	return msg
}

func (e *StartError) Unwrap() error { return e.Kind }

// goPluginCookieText is what go-plugin's Serve prints on a cookie mismatch.
const goPluginCookieText = "This binary is a plugin"

// classifyStart maps go-plugin's Start error (plain strings, mostly) to a
// StartError kind.
func classifyStart(name string, err error, stderr string) *StartError {
	msg := err.Error()
	se := &StartError{Plugin: name, Detail: msg, Stderr: stderr}
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch) || strings.Contains(msg, "error verifying checksum"):
		se.Kind = ErrBinaryChecksum
	case strings.Contains(stderr, goPluginCookieText):
		se.Kind = ErrCookieMismatch
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		se.Kind = ErrStartTimeout
	case strings.Contains(msg, "incompatible API version") || strings.Contains(msg, "incompatible core API version"):
		se.Kind = ErrIncompatibleVersion
	case strings.Contains(msg, "Unrecognized remote plugin message: \n") || strings.HasSuffix(msg, "Unrecognized remote plugin message: "),
		strings.Contains(msg, "plugin exited before we could connect"):
		se.Kind = ErrExitedAtStart
	case strings.Contains(msg, "Unrecognized remote plugin message"), strings.Contains(msg, "unsupported plugin protocol"),
		strings.Contains(msg, "error parsing"), strings.Contains(msg, "unknown address type"):
		se.Kind = ErrBadHandshake
	default:
		se.Kind = ErrLaunch
	}
	return se
}

// tailBuffer keeps the last lines written to it (the plugin's stderr), for
// start errors.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
	cur   strings.Builder
	max   int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range p {
		if c == '\n' {
			t.lines = append(t.lines, t.cur.String())
			t.cur.Reset()
			if len(t.lines) > t.max {
				t.lines = t.lines[len(t.lines)-t.max:]
			}
			continue
		}
		if t.cur.Len() < 1024 {
			t.cur.WriteByte(c)
		}
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := append(append([]string(nil), t.lines...), t.cur.String())
	return strings.TrimSpace(strings.Join(all, " | "))
}
