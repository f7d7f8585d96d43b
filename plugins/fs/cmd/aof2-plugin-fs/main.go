// Command aof2-plugin-fs serves the fs tier-2 backend as an AOF2 plugin.
// The host launches it; run by hand it refuses (no handshake cookie),
// except with -debug, which serves on a Unix socket and prints the JSON
// address to attach to (conformance --reattach, or a debugger session).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/fs"
)

func main() {
	debug := flag.Bool("debug", false, "serve without the host handshake and print the reattach address")
	flag.Parse()
	opts := pluginapi.ServeOptions{Name: "aof2-plugin-fs"}
	if !*debug {
		pluginapi.Serve(fs.New(), opts)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := fs.New()
	defer func() { _ = b.Close() }()
	err := pluginapi.ServeReattachable(ctx, b, opts, func(r pluginapi.Reattach) {
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "aof2-plugin-fs:", err)
		os.Exit(1)
	}
}
