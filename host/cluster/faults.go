package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Faults injects network faults into a node's Raft transport: partitions
// (every connection to or from a cut-off peer fails) and message loss (a
// write fails with probability Loss, which breaks the connection as a lost
// TCP segment past its retries would). Raft retries either way; the fault
// runs check that nothing acknowledged is lost and nothing unacknowledged
// is served. With no fault set, everything passes through.
//
// Each connection starts with a one-line hello naming the dialer's Raft
// address, so the accepting side knows its peer.
type Faults struct {
	mu struct {
		sync.Mutex
		cut   map[raft.ServerAddress]bool // peers this node cannot reach
		loss  float64
		conns map[*faultConn]struct{}
	}
}

// NewFaults returns a fault injector with no fault set.
func NewFaults() *Faults {
	f := &Faults{}
	f.mu.cut = map[raft.ServerAddress]bool{}
	f.mu.conns = map[*faultConn]struct{}{}
	return f
}

// Set replaces the faults: the peers cut off (by Raft address) and the
// loss probability. Open connections to newly cut peers are closed.
func (f *Faults) Set(cut []string, loss float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.mu.cut)
	for _, a := range cut {
		f.mu.cut[raft.ServerAddress(a)] = true
	}
	f.mu.loss = loss
	for c := range f.mu.conns {
		if f.mu.cut[c.peer()] {
			_ = c.Conn.Close()
		}
	}
}

var (
	errInjected = errors.New("cluster: injected network fault")
	errNoHello  = errors.New("not an AOF2 Raft peer")
)

// check fails when the peer is cut off or a loss is drawn.
func (f *Faults) check(peer raft.ServerAddress) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if peer != "" && f.mu.cut[peer] {
		return fmt.Errorf("%w: partitioned from %s", errInjected, peer)
	}
	if f.mu.loss > 0 && rand.Float64() < f.mu.loss {
		return fmt.Errorf("%w: message lost", errInjected)
	}
	return nil
}

func (f *Faults) track(c *faultConn, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.mu.conns[c] = struct{}{}
	} else {
		delete(f.mu.conns, c)
	}
}

// faultLayer is a raft.StreamLayer over TCP that consults Faults.
type faultLayer struct {
	net.Listener
	self   raft.ServerAddress
	faults *Faults
}

const helloPrefix = "AOF2RAFT1 "

func (l *faultLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if err := l.faults.check(addr); err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, helloPrefix+string(l.self)+"\n"); err != nil {
		_ = c.Close()
		return nil, err
	}
	return l.wrap(c, addr), nil
}

func (l *faultLayer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c, ""), nil
}

func (l *faultLayer) Addr() net.Addr {
	a, err := net.ResolveTCPAddr("tcp", string(l.self))
	if err != nil {
		return l.Listener.Addr()
	}
	return a
}

func (l *faultLayer) wrap(c net.Conn, peer raft.ServerAddress) *faultConn {
	fc := &faultConn{Conn: c, faults: l.faults}
	if peer != "" {
		fc.mu.peer, fc.mu.greeted = peer, true
	} else {
		fc.r = bufio.NewReader(c)
	}
	l.faults.track(fc, true)
	return fc
}

// faultConn fails reads and writes the faults say to fail. An accepted
// connection learns its peer from the hello on its first read.
type faultConn struct {
	net.Conn
	faults *Faults
	r      *bufio.Reader // accepted connections: reads go through it
	mu     struct {
		sync.Mutex
		peer    raft.ServerAddress
		greeted bool
	}
}

func (c *faultConn) peer() raft.ServerAddress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.peer
}

func (c *faultConn) Read(p []byte) (int, error) {
	if c.r == nil {
		if err := c.faults.check(c.peer()); err != nil {
			_ = c.Close()
			return 0, err
		}
		return c.Conn.Read(p)
	}
	c.mu.Lock()
	greeted := c.mu.greeted
	c.mu.Unlock()
	if !greeted {
		line, err := readHello(c.r)
		if err != nil || !strings.HasPrefix(line, helloPrefix) {
			_ = c.Close()
			return 0, fmt.Errorf("cluster: raft connection without a hello (%q): %w", line, errors.Join(errNoHello, err))
		}
		c.mu.Lock()
		c.mu.peer, c.mu.greeted = raft.ServerAddress(strings.TrimSpace(line[len(helloPrefix):])), true
		c.mu.Unlock()
	}
	if err := c.faults.check(c.peer()); err != nil {
		_ = c.Close()
		return 0, err
	}
	return c.r.Read(p)
}

func (c *faultConn) Write(p []byte) (int, error) {
	if err := c.faults.check(c.peer()); err != nil {
		_ = c.Close()
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *faultConn) Close() error {
	c.faults.track(c, false)
	return c.Conn.Close()
}

// faultFile is the JSON a fault run writes for a node (Config.FaultFile).
type faultFile struct {
	Cut  []string `json:"cut"`
	Loss float64  `json:"loss"`
}

// watchFile applies the faults path holds each time it changes, until
// ctx ends. A missing or unreadable file means no fault.
func (f *Faults) watchFile(stop <-chan struct{}, path string, log hclog.Logger) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var last []byte
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			b = nil
		}
		if !bytes.Equal(b, last) {
			last = b
			var ff faultFile
			if len(b) > 0 {
				if err := json.Unmarshal(b, &ff); err != nil {
					log.Warn("fault file: not JSON; no fault set", "path", path, "error", err)
					ff = faultFile{}
				}
			}
			f.Set(ff.Cut, ff.Loss)
			log.Info("faults set", "cut", ff.Cut, "loss", ff.Loss)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// maxHello bounds the hello line: a peer that sends more is not one.
const maxHello = 512

func readHello(r *bufio.Reader) (string, error) {
	var b []byte
	for len(b) < maxHello {
		c, err := r.ReadByte()
		if err != nil {
			return string(b), err
		}
		b = append(b, c)
		if c == '\n' {
			return string(b), nil
		}
	}
	return string(b), errors.New("hello line too long")
}
