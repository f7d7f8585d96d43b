package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/internal/testwait"
)

// The end-to-end tests run the real aof2-host binary with the fs plugin
// binary next to it, as an operator would.

// hostBinaries returns the directory holding aof2-host, aof2-plugin-fs and
// the test plugin aof2-plugin-scoped (testdata/scopedplugin), built once per
// run (internal/testbin; the host finds plugins next to itself).
func hostBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the host and plugin binaries")
	}
	return testbin.Dir(t, "aof2-host", "aof2-plugin-fs", "aof2-plugin-scoped")
}

// hostProc is one running aof2-host serve.
type hostProc struct {
	t          *testing.T
	cmd        *exec.Cmd
	grpc, http string
	admin      string // listen.admin's address, when set
	ready      chan struct{}
	exited     chan struct{}
	exitErr    error
	stderr     *lockedBuf
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var servingLine = regexp.MustCompile(`serving \[grpc=(\S+) http=(\S+)(?: admin=(\S+))?\]`)

// bannerLine is serve's banner as a JSON log line.
type bannerLine struct {
	Message string `json:"@message"`
	Module  string `json:"@module"`
	GRPC    string `json:"grpc"`
	HTTP    string `json:"http"`
	Admin   string `json:"admin"`
}

func parseBanner(line string) (bannerLine, bool) {
	var b bannerLine
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &b) != nil || b.Module != "aof2" {
		return bannerLine{}, false
	}
	return b, true
}

// bannerAddrs reads the bound addresses off serve's "serving" banner,
// plain (stdout, text logs) or JSON (stderr).
func bannerAddrs(line string) ([3]string, bool) {
	if m := servingLine.FindStringSubmatch(line); m != nil {
		return [3]string{m[1], m[2], m[3]}, true
	}
	if b, ok := parseBanner(line); ok && b.Message == "serving" {
		return [3]string{b.GRPC, b.HTTP, b.Admin}, true
	}
	return [3]string{}, false
}

// bannerReady reports serve's "ready" banner, plain or JSON.
func bannerReady(line string) bool {
	if strings.Contains(line, "aof2-host ready") {
		return true
	}
	b, ok := parseBanner(line)
	return ok && b.Message == "ready"
}

// defaultHostArgs are small segments, small tier-0 and tier-1 budgets and
// quick scans, so data moves between tiers within a test.
func defaultHostArgs(dataDir string) []string {
	return []string{"-data-dir", dataDir, "-listen-grpc", "127.0.0.1:0", "-listen-http", "127.0.0.1:0",
		"-segment-size", "1MiB", "-tier0-max-bytes", "6MiB", "-tier1-max-bytes", "16KiB", "-coordinator-scan-interval", "20ms", "-log-level", "warn"}
}

// startHost starts `aof2-host serve args...` from bin and waits until it
// listens (not until it is ready).
func startHost(t *testing.T, bin string, env []string, args ...string) *hostProc {
	t.Helper()
	return startHostIn(t, bin, "", env, args...)
}

// startHostIn is startHost with dir as the host's working directory ("":
// the test's).
func startHostIn(t *testing.T, bin, dir string, env []string, args ...string) *hostProc {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "aof2-host"), append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	// Its own process group, as a shell gives a foreground job: a signal
	// sent to the group (a terminal's Ctrl-C) reaches the host and not the
	// test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	h := &hostProc{t: t, cmd: cmd, ready: make(chan struct{}), exited: make(chan struct{}), stderr: &lockedBuf{}}
	// The banner is JSON lines on stderr with JSON logs (the default off a
	// terminal), plain lines on stdout with text logs: watch both.
	errR, errW := io.Pipe()
	cmd.Stderr = io.MultiWriter(h.stderr, errW)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	listening := make(chan [3]string, 1)
	var readyOnce sync.Once
	watch := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if a, ok := bannerAddrs(sc.Text()); ok {
				select {
				case listening <- a:
				default:
				}
			}
			if bannerReady(sc.Text()) {
				readyOnce.Do(func() { close(h.ready) })
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}
	go watch(out)
	go watch(errR)
	go func() { h.exitErr = cmd.Wait(); _ = errW.Close(); close(h.exited) }()
	t.Cleanup(func() { h.kill() })
	select {
	case a := <-listening:
		h.grpc, h.http, h.admin = a[0], a[1], a[2]
	case <-h.exited:
		t.Fatalf("host exited before listening: %v\n%s", h.exitErr, h.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("host did not listen within 30s\n%s", h.stderr)
	}
	return h
}

func (h *hostProc) waitReady() {
	h.t.Helper()
	select {
	case <-h.ready:
	case <-h.exited:
		h.t.Fatalf("host exited before ready: %v\n%s", h.exitErr, h.stderr)
	case <-time.After(60 * time.Second):
		h.t.Fatalf("host not ready within 60s\n%s", h.stderr)
	}
}

func (h *hostProc) kill() {
	h.t.Helper()
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	testwait.Recv(h.t, h.exited, testwait.Default, "the host to exit after SIGKILL")
}

// stacks ends the host with SIGQUIT (the Go runtime prints every
// goroutine's stack) and returns the stacks that mention any of the
// given strings.
func (h *hostProc) stacks(mention ...string) string {
	h.t.Helper()
	before := len(h.stderr.String())
	_ = h.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		h.kill()
	}
	var out []string
	for _, g := range strings.Split(h.stderr.String()[before:], "\n\n") {
		if slices.ContainsFunc(mention, func(m string) bool { return strings.Contains(g, m) }) {
			out = append(out, compactStack(g))
		}
	}
	return strings.Join(out, "\n")
}

// compactStack keeps a goroutine's header and its functions outside the
// runtime, one line each with the file:line they were at.
func compactStack(g string) string {
	lines := strings.Split(strings.TrimSpace(g), "\n")
	out := []string{lines[0]}
	for i := 1; i+1 < len(lines); i += 2 {
		fn, at := lines[i], strings.TrimSpace(lines[i+1])
		if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "created by") {
			continue
		}
		if j := strings.Index(at, " fp="); j > 0 {
			at = at[:j]
		}
		out = append(out, "  "+fn[:strings.LastIndex(fn, "(")+0]+" "+at[strings.LastIndex(at, "/")+1:])
	}
	return strings.Join(out, "\n")
}

// stop sends SIGTERM and waits for a clean exit.
func (h *hostProc) stop() {
	h.t.Helper()
	require.NoError(h.t, h.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-h.exited:
	case <-time.After(60 * time.Second):
		h.t.Fatalf("host did not stop within 60s after SIGTERM\n%s", h.stderr)
	}
	require.NoError(h.t, h.exitErr, "clean exit after SIGTERM\n%s", h.stderr)
}

func (h *hostProc) dial(ctx context.Context, opts ...client.Option) *client.Client {
	h.t.Helper()
	c, err := client.Dial(ctx, h.grpc, opts...)
	require.NoError(h.t, err)
	h.t.Cleanup(func() { c.Close() })
	return c
}

func (h *hostProc) url(path string) string { return "http://" + h.http + path }

// httpClient bounds every HTTP request of the e2e tests.
var httpClient = &http.Client{Timeout: time.Minute}

func httpDo(t *testing.T, method, url, token string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

// TestMain removes the binaries hostBinaries built, if it built them.
func TestMain(m *testing.M) { os.Exit(testbin.Run(m)) }
