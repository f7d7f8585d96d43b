package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDemoRoundTrip runs the demo in-process against the real fs plugin
// binary: a workload larger than tier 0, segments reaching tier 2 and
// leaving tier 0, a cold read that hydrates, every payload verified.
func TestDemoRoundTrip(t *testing.T) {
	bin := hostBinaries(t) // the demo finds aof2-plugin-fs there (-plugin-dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"demo", "-dir", dir, "-plugin-dir", bin,
		"-clients", "4", "-records", "4000", "-size", "1000", "-tier0-max-bytes", "2MiB"}, &out, &errOut)
	s := out.String()
	require.Equal(t, exitOK, code, "%s\n%s", s, errOut.String())

	// The steps, in order.
	steps := []string{
		"AOF2 demo:",
		"== 1. the first records", "AOF2 dump (online)",
		"== 2. the workload", "durable appends: ",
		"== 3. seal", "waiting for tier 2 uploads…", "AOF2 dump (online)",
		"== 4. read everything back", "every payload verified",
		"== 5. a cold read", "cold read of segment", "segment 1 is back in tier 0", "AOF2 dump (online)",
		"== 6. summary", "host stopped",
	}
	at := 0
	for _, step := range steps {
		i := strings.Index(s[at:], step)
		require.GreaterOrEqual(t, i, 0, "%q after offset %d in\n%s", step, at, s)
		at += i + len(step)
	}
	require.Equal(t, 3, strings.Count(s, "AOF2 dump (online)"), "three dumps")

	require.Regexp(t, `durable appends: 3996 records in \S+: \d+ records/s, [\d.]+ MB/s, latency p50 \S+ p99 \S+`, s)
	require.Regexp(t, `sealed stream 1: 4000 records in [4-9] segments \([3-8] rollovers\)`, s)
	m := regexp.MustCompile(`done after \S+: all (\d+) sealed segments are in tier 2, ([1-9]\d*) have left tier 0`).FindStringSubmatch(s)
	require.NotNil(t, m, s)
	require.Regexp(t, `cold read of segment 1 from tier [12]: \d+ records in [\d.]+ ms \(hydrated\), payloads verified`, s)
	require.Contains(t, s, "read 4000 records in ")
	require.Contains(t, s, "verified   4000 records read back: every payload verified")

	// The table moved: segment 1 only in tier 2 (and maybe 1) after the
	// uploads, back in tier 0 at the end.
	step3, step4, step5 := strings.Index(s, "== 3."), strings.Index(s, "== 4."), strings.Index(s, "== 5.")
	row1 := func(t0 string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^\s+1\s+0\s+\d+\s+.*\ssealed\s+` + t0 + `\s+[·●]\s+●\s+\S+$`)
	}
	require.Regexp(t, row1("·"), s[step3:step4], "segment 1 left tier 0 and is in tier 2")
	require.Regexp(t, row1("●"), s[step5:], "segment 1 is back in tier 0")
	require.Regexp(t, `(?m)^\s+tier2\s+`+m[1]+`\s`, s[step3:step4], "the tier-2 row counts every sealed segment")

	// An explicit -dir is kept, tier 2 objects included.
	_, err := os.Stat(filepath.Join(dir, "streams"))
	require.NoError(t, err, "an explicit -dir is kept")
	objects := 0
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "tier2"), func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			objects++
		}
		return err
	}))
	require.Positive(t, objects, "the fs plugin wrote objects under <dir>/tier2")
}

// TestDemoWithoutPlugin: a missing plugin binary says how to get one.
func TestDemoWithoutPlugin(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "-plugin-dir", t.TempDir()}, &out, &errOut)
	require.Equal(t, exitNotFound, code, errOut.String())
	require.Contains(t, errOut.String(), "aof2-plugin-fs")
	require.Contains(t, errOut.String(), "make demo")
	require.Empty(t, out.String(), "nothing started")
}

func TestUsageErrors(t *testing.T) {
	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	tests := []struct {
		args []string
		code int
	}{
		{nil, exitUsage},
		{[]string{"--help"}, exitOK},
		{[]string{"nope"}, exitUsage},
		{[]string{"demo", "-h"}, exitOK},
		{[]string{"demo", "-records", "0"}, exitUsage},
		{[]string{"demo", "-clients", "0"}, exitUsage},
		{[]string{"demo", "-clients", "8", "-records", "7"}, exitUsage},
		{[]string{"demo", "-size", "3"}, exitUsage},
		{[]string{"demo", "-size", "2000000"}, exitUsage},
		{[]string{"demo", "-records", "100"}, exitUsage}, // fits in tier 0: nothing would move
		{[]string{"demo", "-segment-size", "12345"}, exitUsage},
		{[]string{"demo", "-tier0-max-bytes", "lots"}, exitUsage},
		{[]string{"demo", "-wait", "0s"}, exitUsage},
		{[]string{"demo", "-dir", full}, exitUsage},
		{[]string{"demo", "extra"}, exitUsage},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		require.Equal(t, tc.code, run(context.Background(), tc.args, &out, &errOut), "%v: %s", tc.args, errOut.String())
	}
}
