package client_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// hostAddr is the gRPC address of the host the examples talk to; TestMain
// serves one for the whole package run.
var hostAddr string

func TestMain(m *testing.M) {
	code, err := runWithHost(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "example host:", err)
		code = 1
	}
	os.Exit(code)
}

func runWithHost(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "aof2-client-example")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	st, err := core.Open(dir, core.Config{SegmentSize: segment.MinCapacity})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	srv, err := server.New(servertest.NewNode(st), server.Options{})
	if err != nil {
		return 0, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	hostAddr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.ServeGRPC(l) }()
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return code, err
	}
	return code, <-served
}
