package fs_test

import (
	"bufio"
	"flag"
	"os"
	"os/exec"
	"testing"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/fs"
)

var large = flag.Bool("large", false, "also round-trip a 1 GiB object")

// pluginBin returns cmd/aof2-plugin-fs, built once per run
// (internal/testbin), so tests that launch it work under plain `go test`
// from a clean clone.
func pluginBin(t *testing.T) string {
	t.Helper()
	return testbin.Path(t, "aof2-plugin-fs")
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testbin.Run(m))
}

func opts() conformance.Options {
	return conformance.Options{Large: *large || conformance.LargeFromEnv()}
}

func TestConformanceInProcess(t *testing.T) {
	root := t.TempDir()
	conformance.Run(t, &conformance.InProcess{
		New:    func() (pluginapi.Backend, error) { return fs.New(), nil },
		Config: map[string]string{"root": root},
	}, opts())
}

func TestConformanceBinary(t *testing.T) {
	root := t.TempDir()
	conformance.Run(t, &conformance.Binary{
		Path:       pluginBin(t),
		Config:     map[string]string{"root": root},
		StagingDir: t.TempDir(),
	}, opts())
}

// TestConformanceReattach runs the suite against a plugin process started
// by hand in -debug mode, attached through the address it prints.
func TestConformanceReattach(t *testing.T) {
	cmd := exec.Command(pluginBin(t), "-debug")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the reattach address: %v", err)
	}
	addr, err := pluginapi.ParseReattach(line)
	if err != nil {
		t.Fatal(err)
	}
	if addr.Pid != cmd.Process.Pid {
		t.Fatalf("reattach pid %d, process %d", addr.Pid, cmd.Process.Pid)
	}
	conformance.Run(t, &conformance.Reattach{Addr: addr, Config: map[string]string{"root": t.TempDir()}}, conformance.Options{Quick: true})
}
