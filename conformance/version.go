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
// DIRECT-VALIDATION; got/want in every failure.
const SuiteVersion = "1.1.0"

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
