// Command testbins builds every binary the tests launch (testbin.Binaries)
// into one directory, for AOF2_TEST_BIN_DIR:
//
//	go run ./internal/testbin/cmd/testbins DIR
//
// One `go build` builds them in parallel; it relinks only what changed but
// touches every target, so a binary whose bytes did not change gets its old
// modification time back, and go test's result cache (which keys on the
// modification time of the files a test stats) stays valid for the tests
// that launch it.
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/aof2/aof2/internal/testbin"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: testbins DIR")
		os.Exit(2)
	}
	if err := build(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "testbins:", err)
		os.Exit(1)
	}
}

func build(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	before := map[string]state{}
	for _, name := range testbin.Names() {
		if st, ok := stateOf(filepath.Join(dir, name)); ok {
			before[name] = st
		}
	}
	// go build -o DIR/ names each binary after its package's last element;
	// the ones named otherwise are built one by one.
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	var renamed []string
	for _, name := range testbin.Names() {
		pkg := testbin.Binaries[name]
		if filepath.Base(pkg) == name {
			args = append(args, pkg)
		} else {
			renamed = append(renamed, name)
		}
	}
	if err := run(args...); err != nil {
		return err
	}
	for _, name := range renamed {
		if err := run("build", "-o", filepath.Join(dir, name), testbin.Binaries[name]); err != nil {
			return err
		}
	}
	for name, old := range before {
		p := filepath.Join(dir, name)
		if now, ok := stateOf(p); ok && now.sum == old.sum && !now.mtime.Equal(old.mtime) {
			if err := os.Chtimes(p, old.mtime, old.mtime); err != nil {
				return err
			}
		}
	}
	return nil
}

func run(args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w", args, err)
	}
	return nil
}

type state struct {
	sum   [sha256.Size]byte
	mtime time.Time
}

func stateOf(p string) (state, bool) {
	f, err := os.Open(p)
	if err != nil {
		return state{}, false
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return state{}, false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return state{}, false
	}
	st := state{mtime: info.ModTime()}
	copy(st.sum[:], h.Sum(nil))
	return st, true
}
