package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemoRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "-dir", dir, "-records", "3000", "-writers", "8", "-size", "1000"}, &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())
	require.Contains(t, out.String(), "appended   3000 records")
	require.Contains(t, out.String(), "every payload verified")
	require.Regexp(t, `reopened .* \d+ segments \(\d+ sealed, [1-9]\d* rollovers\), 3000 records`, out.String())
	_, err := os.Stat(filepath.Join(dir, "streams"))
	require.NoError(t, err, "an explicit -dir is kept")
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{nil, exitUsage},
		{[]string{"--help"}, exitOK},
		{[]string{"nope"}, exitUsage},
		{[]string{"demo", "-h"}, exitOK},
		{[]string{"demo", "-records", "0"}, exitUsage},
		{[]string{"demo", "-size", "3"}, exitUsage},
		{[]string{"demo", "-segment-size", "12345"}, exitUsage},
		{[]string{"demo", "extra"}, exitUsage},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		require.Equal(t, tc.code, run(context.Background(), tc.args, &out, &errOut), "%v: %s", tc.args, errOut.String())
	}
}
