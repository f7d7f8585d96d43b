package pluginapi

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/aof2/aof2/internal/buildinfo"
)

// Main is a plugin command's whole main function:
//
//	func main() { pluginapi.Main("aof2-plugin-mine", mine.New) }
//
// Launched by the host it serves newBackend() over the handshake (Serve).
// Run by hand with -version it prints VersionText and exits. Run by hand
// with -debug it serves without the handshake on a Unix socket
// and prints the JSON reattach address (for conformance --reattach or a
// debugger) until SIGINT/SIGTERM; without -debug a hand-run plugin refuses
// to start, as Serve does.
func Main(name string, newBackend func() Backend) {
	debug := flag.Bool("debug", false, "serve without the host handshake and print the reattach address")
	version := flag.Bool("version", false, "print the build (version, commit, date, Go) and the contract version, and exit")
	flag.Parse()
	if *version {
		fmt.Print(VersionText(name))
		return
	}
	var opts ServeOptions
	b := newBackend()
	if c, ok := b.(io.Closer); ok {
		defer func() { _ = c.Close() }()
	}
	if !*debug {
		Serve(b, opts)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := ServeReattachable(ctx, b, opts, func(r Reattach) {
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		stop()
		os.Exit(1)
	}
}

// VersionText is what a plugin binary's -version prints: its build
// (internal/buildinfo: the main module's version, the commit, its date,
// the Go version) and the contract version this package implements.
func VersionText(name string) string {
	return fmt.Sprintf("%s %s\nplugin contract: v%d.%d\n", name, buildinfo.Read(), ContractMajor, ContractMinor)
}
