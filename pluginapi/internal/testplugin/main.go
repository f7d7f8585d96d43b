// Command testplugin is a misbehaving plugin for the host's lifecycle
// tests. Its first argument picks the misbehaviour; launched without one
// under the name aof2-plugin-<mode> (as the host launches plugins, with no
// arguments), the name picks it.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/pluginapi/internal/sink"
)

func main() {
	mode := strings.TrimPrefix(filepath.Base(os.Args[0]), "aof2-plugin-")
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	b := fake.New(fake.Options{})
	switch mode {
	case "ok":
		pluginapi.Serve(b, pluginapi.ServeOptions{})
	case "stdout":
		fmt.Println("starting up...") // breaks the handshake
		pluginapi.Serve(b, pluginapi.ServeOptions{})
	case "cookie":
		hs := pluginapi.Handshake
		hs.MagicCookieValue = "another-host's-cookie"
		serveRaw(hs, map[int]plugin.PluginSet{pluginapi.ContractMajor: {pluginapi.PluginName: &pluginapi.GRPCPlugin{Impl: b}}})
	case "v2":
		serveRaw(pluginapi.Handshake, map[int]plugin.PluginSet{2: {pluginapi.PluginName: &pluginapi.GRPCPlugin{Impl: b}}})
	case "hang":
		time.Sleep(time.Hour)
	case "exit":
		fmt.Fprintln(os.Stderr, "testplugin: giving up at start")
		os.Exit(3)
	case "notplugin":
		fmt.Println("usage: testplugin MODE")
	case "badinfo":
		pluginapi.Serve(namelessBackend{b}, pluginapi.ServeOptions{})
	case "stubborn": // ignores the host's shutdown
		serveRaw(pluginapi.Handshake, map[int]plugin.PluginSet{pluginapi.ContractMajor: {pluginapi.PluginName: &pluginapi.GRPCPlugin{Impl: b}}})
		time.Sleep(time.Hour)
	case "sink":
		pluginapi.Serve(sink.New(), pluginapi.ServeOptions{})
	case "env":
		pluginapi.Serve(envBackend{b}, pluginapi.ServeOptions{})
	case "authfail":
		pluginapi.Serve(authFailBackend{b}, pluginapi.ServeOptions{})
	case "older-minor":
		pluginapi.Serve(olderMinorBackend{b}, pluginapi.ServeOptions{})
	case "newer-minor":
		serveNewerMinor(b)
	case "unconditional": // no if_absent nor if_match: a writer host refuses it
		pluginapi.Serve(unconditionalBackend{b}, pluginapi.ServeOptions{})
	default:
		fmt.Fprintf(os.Stderr, "testplugin: unknown mode %q\n", mode)
		os.Exit(2)
	}
}

func serveRaw(hs plugin.HandshakeConfig, sets map[int]plugin.PluginSet) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: sets,
		GRPCServer:       func(o []grpc.ServerOption) *grpc.Server { return grpc.NewServer(o...) },
	})
}

type namelessBackend struct{ *fake.Backend }

func (b namelessBackend) Info(ctx context.Context) (pluginapi.Info, error) {
	info, err := b.Backend.Info(ctx)
	info.Name = ""
	return info, err
}

type authFailBackend struct{ *fake.Backend }

func (b authFailBackend) Probe(context.Context, pluginapi.ProbeRequest) error {
	return &pluginapi.Error{Code: pluginapi.CodeAuth, Message: "the configured credentials expired"}
}

// envBackend reports the names of its environment variables as its version.
type envBackend struct{ *fake.Backend }

func (b envBackend) Info(ctx context.Context) (pluginapi.Info, error) {
	info, err := b.Backend.Info(ctx)
	var names []string
	for _, kv := range os.Environ() {
		names = append(names, strings.SplitN(kv, "=", 2)[0])
	}
	sort.Strings(names)
	info.Version = strings.Join(names, ",")
	return info, err
}

// unconditionalBackend advertises no conditional writes.
type unconditionalBackend struct{ *fake.Backend }

func (b unconditionalBackend) Info(ctx context.Context) (pluginapi.Info, error) {
	info, err := b.Backend.Info(ctx)
	info.Capabilities.IfAbsent, info.Capabilities.IfMatch = false, false
	return info, err
}
