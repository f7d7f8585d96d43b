// Command aof2-plugin-fs serves the fs tier-2 backend as an AOF2 plugin.
// The host launches it; run by hand it refuses (no handshake cookie),
// except with -debug, which serves on a Unix socket and prints the JSON
// address to attach to (conformance --reattach, or a debugger session).
package main

import (
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/fs"
)

func main() { pluginapi.Main("aof2-plugin-fs", func() pluginapi.Backend { return fs.New() }) }
