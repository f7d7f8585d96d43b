// Package testtree snapshots a restored data directory's streams for
// tests that compare two restores file by file.
package testtree

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Streams maps every file under dir/streams to its bytes, except manifest
// chunks and views, whose records carry the time they were written: for
// them only the name counts.
func Streams(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := filepath.Join(dir, "streams")
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if strings.Contains(rel, "/manifest/") || strings.Contains(rel, "/warm/") {
			out[rel] = ""
			return nil
		}
		b, err := os.ReadFile(path)
		out[rel] = string(b)
		return err
	}))
	return out
}
