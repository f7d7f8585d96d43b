// Command aof2-host is the AOF2 host process: `serve` runs a node (the
// store, the coordinator, the tier-2 plugin) behind the gRPC and HTTP client
// API; the other commands administer a data directory, offline or through a
// running host. Run `aof2-host help` for the list.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
