package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/aof2/aof2/pluginapi"
)

// SuiteVersion identifies this suite in a Report, so an author can publish
// what they certified against. The minor version grows when behaviours or
// rules are added (a backend certified before may fail the new ones); the
// major version would grow if a rule id changed meaning, which rule ids
// are kept from doing.
//
// 1.0: the first suite (43 behaviours). 1.1: races (IF-ABSENT-RACE,
// IF-MATCH-RACE, PUT-DELETE-RACE, LIST-CONCURRENT), LIST-INFO and
// DIRECT-VALIDATION; got/want in every failure. 1.2: checks of clauses
// the rules stated but did not test: LIST-INFO compares the listed etag with
// Head's, IF-MATCH covers ranged Get and GetFile, FILES a staging file
// longer than declared.
const SuiteVersion = "1.2.0"

// SuiteContract is the backend contract version the suite checks.
func SuiteContract() string {
	return fmt.Sprintf("v%d.%d", pluginapi.ContractMajor, pluginapi.ContractMinor)
}

// PluginBinary identifies the executable a Report certified.
type PluginBinary struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// pluginOf identifies the executable behind h: a Binary's Path, or the
// running process a Reattach names (its Pid, through /proc on Linux; best
// effort, nil when it cannot be read). Other harnesses have none.
func pluginOf(h Harness) (*PluginBinary, error) {
	switch h := h.(type) {
	case *Binary:
		return hashPlugin(h.Path)
	case *Reattach:
		if h.Addr.Pid <= 0 {
			return nil, nil
		}
		exe := fmt.Sprintf("/proc/%d/exe", h.Addr.Pid)
		p, err := hashPlugin(exe)
		if err != nil {
			return nil, nil
		}
		if target, err := os.Readlink(exe); err == nil {
			p.Path = target
		}
		return p, nil
	}
	return nil, nil
}

// hashPlugin describes the file at path.
func hashPlugin(path string) (*PluginBinary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hashing the plugin binary: %w", err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("hashing the plugin binary %s: %w", path, err)
	}
	return &PluginBinary{Path: path, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}
