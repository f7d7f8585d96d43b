// Command aof2-plugin-s3 serves the s3 tier-2 backend as an AOF2 plugin.
// The host launches it and configures it (bucket, endpoint, credentials...)
// through Configure; run by hand it refuses (no handshake cookie), except
// with -debug, which serves on a Unix socket and prints the JSON address
// to attach to.
package main

import (
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/s3"
)

func main() { pluginapi.Main("aof2-plugin-s3", func() pluginapi.Backend { return s3.New() }) }
