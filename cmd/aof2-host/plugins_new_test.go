package main

import (
	"bytes"
	"context"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// newSkeleton runs `aof2-host plugins new` and returns the module's
// directory.
func newSkeleton(t *testing.T, name string, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "aof2-plugin-"+name)
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"plugins", "new", name, "-dir", dir}, args...), &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())
	return dir
}

// TestPluginsNew: the skeleton has every file, names and module filled
// in, gofmt-clean Go, and TODO(aof2) places that testdata/pluginfill fills
// one for one. Bad names and a non-empty directory are usage errors.
func TestPluginsNew(t *testing.T) {
	dir := newSkeleton(t, "my-store", "-module", "example.com/x/my-store")
	for _, f := range []string{"go.mod", "Makefile", "README.md", "backend.go", "backend_test.go", "cmd/aof2-plugin-my-store/main.go"} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	mod := readFile(t, filepath.Join(dir, "go.mod"))
	require.Contains(t, mod, "module example.com/x/my-store\n")
	require.NotContains(t, mod, "replace", "no -aof2: the published module")
	require.Contains(t, readFile(t, filepath.Join(dir, "Makefile")), "go build -o $(BIN) ./cmd/aof2-plugin-my-store")
	main := readFile(t, filepath.Join(dir, "cmd/aof2-plugin-my-store/main.go"))
	require.Contains(t, main, `mystore "example.com/x/my-store"`)
	require.Contains(t, main, `pluginapi.Main("aof2-plugin-my-store"`)
	backend := readFile(t, filepath.Join(dir, "backend.go"))
	require.Contains(t, backend, "package mystore\n")
	require.Contains(t, backend, `Name: "my-store"`)
	for _, f := range []string{"backend.go", "backend_test.go", "cmd/aof2-plugin-my-store/main.go"} {
		src := readFile(t, filepath.Join(dir, f))
		formatted, err := format.Source([]byte(src))
		require.NoError(t, err, f)
		require.Equal(t, string(formatted), src, "%s is not gofmt-clean", f)
	}
	fillSkeleton(t, dir, "mystore") // every place has a snippet and every snippet a place

	for _, args := range [][]string{
		{"plugins", "new"},
		{"plugins", "new", "My"},
		{"plugins", "new", "9lives"},
		{"plugins", "new", "../evil"},
		{"plugins", "new", "a", "b"},
		{"plugins", "new", "mine", "-dir", dir},                       // not empty
		{"plugins", "new", "mine", "-aof2", t.TempDir(), "-dir", "x"}, // not a checkout
	} {
		var out, errOut bytes.Buffer
		require.Equal(t, exitUsage, run(context.Background(), args, &out, &errOut), "%v: %s", args, errOut.String())
	}
}

// TestPluginsNewGoVersion: a new plugin module asks for this module's Go.
func TestPluginsNewGoVersion(t *testing.T) {
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, filepath.Join(repoRoot(t), "go.mod")))
	require.NotNil(t, m)
	require.Equal(t, m[1], skeletonGoVersion)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	return root
}

var (
	todoPlace = regexp.MustCompile(`^\s*// TODO\(aof2\) (\S+):`)
	todoCall  = regexp.MustCompile(`\btodo\w*\(`)
)

// fillSkeleton puts testdata/pluginfill's in-memory store into the
// skeleton in dir: memory.go, and in each .go file every place marked
// "// TODO(aof2) ID:" (the marker, the comment lines after it and a line
// calling todo, todoRead or todoOptional after those) replaced by snippet
// ID.
func fillSkeleton(t *testing.T, dir, pkg string) {
	t.Helper()
	snippets := parseSnippets(t, readFile(t, filepath.Join("testdata", "pluginfill", "snippets.txt")))
	used := map[string]bool{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	for _, f := range files {
		lines := strings.Split(readFile(t, f), "\n")
		var out []string
		for i := 0; i < len(lines); i++ {
			m := todoPlace.FindStringSubmatch(lines[i])
			if m == nil {
				out = append(out, lines[i])
				continue
			}
			snippet, ok := snippets[m[1]]
			require.True(t, ok, "%s: no snippet for the place %q", f, m[1])
			require.False(t, used[m[1]], "place %q twice", m[1])
			used[m[1]] = true
			for i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "//") {
				i++
			}
			if i+1 < len(lines) && todoCall.MatchString(lines[i+1]) {
				i++
			}
			out = append(out, snippet...)
		}
		require.NoError(t, os.WriteFile(f, []byte(strings.Join(out, "\n")), 0o644))
	}
	for id := range snippets {
		require.True(t, used[id], "snippet %q fills no place of the skeleton", id)
	}
	mem := strings.Replace(readFile(t, filepath.Join("testdata", "pluginfill", "memory.go.txt")), "package PACKAGE", "package "+pkg, 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.go"), []byte(mem), 0o644))
}

// parseSnippets reads "-- ID --" sections; text before the first is a
// comment.
func parseSnippets(t *testing.T, text string) map[string][]string {
	t.Helper()
	header := regexp.MustCompile(`^-- (\S+) --$`)
	out := map[string][]string{}
	id := ""
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			id = m[1]
			out[id] = nil
			continue
		}
		if id != "" {
			out[id] = append(out[id], line)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// goCmd runs the go command in dir, offline: every module comes from the
// module cache, with the sums the aof2 checkout's go.sum gave the skeleton.
func goCmd(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GOPROXY=off", "GOWORK=off"}, env...)...)
	return cmd
}
