// Command aof2-plugin-azure serves the azure tier-2 backend as an AOF2 plugin.
// The host launches it and configures it (container, connection string or account and credentials...)
// through Configure; run by hand it refuses (no handshake cookie), except
// with -debug, which serves on a Unix socket and prints the JSON address
// to attach to.
package main

import (
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/azure"
)

func main() { pluginapi.Main("aof2-plugin-azure", func() pluginapi.Backend { return azure.New() }) }
