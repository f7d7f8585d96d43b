package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Run(m)) }

func TestCertifiesTheFSPlugin(t *testing.T) {
	bin := testbin.Path(t, "aof2-plugin-fs")
	report := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"--plugin", bin, "--config", "root=" + t.TempDir(), "--json", report, "--run", "Sizes|Ranges|List",
		"--bench-size", "1048576", "--bench-objects", "4"}, &stdout, &stderr)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), "CERTIFIED")
	require.Contains(t, stdout.String(), `backend "fs"`)
	var rep conformance.Report
	data, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Equal(t, "fs", rep.Backend)
	require.Zero(t, rep.Failed)
	require.Positive(t, rep.Passed)

	// What an author publishes: suite and contract versions, the binary's
	// hash, the measured throughput.
	require.Equal(t, conformance.SuiteVersion, rep.SuiteVersion)
	require.Equal(t, conformance.SuiteContract(), rep.SuiteContract)
	require.NotNil(t, rep.Plugin)
	sum, err := os.ReadFile(bin)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%x", sha256.Sum256(sum)), rep.Plugin.SHA256)
	require.Equal(t, int64(len(sum)), rep.Plugin.Size)
	require.NotNil(t, rep.Benchmarks)
	require.Empty(t, rep.Benchmarks.Error)
	require.Equal(t, 4, rep.Benchmarks.Objects)
	require.Positive(t, rep.Benchmarks.PutDuration)
	require.Contains(t, stdout.String(), "sha256:"+rep.Plugin.SHA256)
	require.Contains(t, stdout.String(), "throughput: put")
	for _, c := range rep.Cases {
		require.Positive(t, c.Duration, "%s has no duration", c.Name)
	}
}

// A plugin that stores nothing is not certified: exit 2, and the report
// names the broken rules.
func TestRefusesABrokenPlugin(t *testing.T) {
	bin := testbin.Path(t, "aof2-plugin-fake")
	faults := filepath.Join(t.TempDir(), "faults.json")
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.DropPut}}))
	var stdout, stderr bytes.Buffer
	code := run([]string{"--plugin", bin, "--config", "fault_file=" + faults, "--json", "-", "--run", "Sizes", "--bench=false"}, &stdout, &stderr)
	require.Equal(t, 2, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), "NOT CERTIFIED")
	require.Contains(t, stdout.String(), "[ROUND-TRIP]")
	require.Contains(t, stdout.String(), `"rules": [`)
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 1, run(nil, &stdout, &stderr))
	require.Equal(t, 1, run([]string{"--plugin", "x", "--reattach", "{}"}, &stdout, &stderr))
	require.Equal(t, 1, run([]string{"--reattach", "not json"}, &stdout, &stderr))
	require.Equal(t, 1, run([]string{"--plugin", "x", "--config", "novalue"}, &stdout, &stderr))
}
