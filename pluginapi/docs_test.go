package pluginapi_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBackendDocsCiteEveryRule: every rule the conformance suite checks
// (a Rule{"ID", …} in conformance/) is cited as [ID] in the Backend
// method docs and has a row in docs/plugin-contract.md's rule table, so
// an author reading either finds what a failure's rule id asks for.
func TestBackendDocsCiteEveryRule(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "conformance", "*.go"))
	require.NoError(t, err)
	ruleID := regexp.MustCompile(`Rule\{"([A-Z0-9-]+)"`)
	var ids []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range ruleID.FindAllStringSubmatch(string(src), -1) {
			ids = append(ids, m[1])
		}
	}
	require.NotEmpty(t, ids)
	backend, err := os.ReadFile("backend.go")
	require.NoError(t, err)
	contract, err := os.ReadFile(filepath.Join("..", "docs", "plugin-contract.md"))
	require.NoError(t, err)
	for _, id := range ids {
		require.Contains(t, string(backend), "["+id+"]", "rule %s is not cited in the Backend docs (backend.go)", id)
		require.Contains(t, string(contract), "| `"+id+"` |", "rule %s has no row in docs/plugin-contract.md#the-conformance-suite", id)
	}
}
