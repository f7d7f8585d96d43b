// Command aof2-plugin-fake serves the in-memory fake backend as a plugin
// process, for host tests: its faults are set through the fault_file
// setting (see fake.WriteFaultFile) and can change while it runs, and a
// Crash fault really ends the process mid-stream (once per crash_marker
// file, so a relaunched plugin does not crash again).
package main

import (
	"os"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

func main() {
	b := fake.New(fake.Options{CrashExit: func() { os.Exit(42) }})
	pluginapi.Serve(b, pluginapi.ServeOptions{})
}
