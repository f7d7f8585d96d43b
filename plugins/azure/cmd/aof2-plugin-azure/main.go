// Command aof2-plugin-azure serves the azure tier-2 backend as an AOF2 plugin.
// The host launches it and configures it (container, connection string or account and credentials...)
// through Configure; run by hand it refuses (no handshake cookie), except
// with -debug, which serves on a Unix socket and prints the JSON address
// to attach to.
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
	"github.com/aof2/aof2/plugins/azure"
)

func main() {
	debug := flag.Bool("debug", false, "serve without the host handshake and print the reattach address")
	flag.Parse()
	opts := pluginapi.ServeOptions{Name: "aof2-plugin-azure"}
	if !*debug {
		pluginapi.Serve(azure.New(), opts)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := pluginapi.ServeReattachable(ctx, azure.New(), opts, func(r pluginapi.Reattach) {
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "aof2-plugin-azure:", err)
		os.Exit(1)
	}
}
