package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aof2/aof2/pluginapi"
)

// ErrMissingCapabilities: the tier-2 plugin does not advertise a
// capability this host's role cannot run without. Without the check the
// host would start and then stall: a writer claims the prefix with
// if_absent and if_match and lists tier 2 before it creates a stream, a
// replica lists what the writer uploaded.
var ErrMissingCapabilities = errors.New("the tier-2 plugin lacks capabilities this host needs")

// MissingCapabilities names the capabilities a host needs of its backend
// (a writer or cluster member: if_absent, if_match, list; a replica: list)
// that c does not advertise (docs/plugin-contract.md#capabilities-the-host-uses).
func MissingCapabilities(c pluginapi.Capabilities, replica bool) []string {
	var missing []string
	if !replica && !c.IfAbsent {
		missing = append(missing, "if_absent")
	}
	if !replica && !c.IfMatch {
		missing = append(missing, "if_match")
	}
	if !c.List {
		missing = append(missing, "list")
	}
	return missing
}

// checkCapabilities refuses a backend missing what the role needs.
func checkCapabilities(ctx context.Context, b pluginapi.Backend, replica bool) error {
	info, err := b.Info(ctx)
	if err != nil {
		return fmt.Errorf("tier-2 plugin info: %w", err)
	}
	if missing := MissingCapabilities(info.Capabilities, replica); len(missing) > 0 {
		role := "a writer"
		if replica {
			role = "a read replica"
		}
		return fmt.Errorf("%w: backend %q does not advertise %s, which %s needs (docs/plugin-contract.md#capabilities-the-host-uses)",
			ErrMissingCapabilities, info.Name, strings.Join(missing, ", "), role)
	}
	return nil
}
