//go:build !linux

package host

import "os/exec"

// setParentDeathSignal: no parent-death signal outside Linux; the plugin's
// own parent watch (Serve) ends it instead.
func setParentDeathSignal(*exec.Cmd) {}
