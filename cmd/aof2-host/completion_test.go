package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompletions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"ma"}, []string{"manifest"}},
		{[]string{"manifest", ""}, []string{"inspect", "verify", "snapshot", "parity"}},
		{[]string{"manifest", "verify", "-sk"}, []string{"-skip-tier2"}},
		{[]string{"dump", "-ad"}, []string{"-addr"}},
		{[]string{"serve", "-segment-s"}, []string{"-segment-size", "-segment-sync"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"help", "clu"}, []string{"cluster"}},
		{[]string{"-ver"}, []string{"-version"}},
		{[]string{"seal", "-stream", ""}, nil},
		{[]string{"nonsense", ""}, nil},
	} {
		require.Equal(t, tc.want, completions(ctx, tc.words), "%q", tc.words)
	}
	// Every command name completes.
	for _, c := range commands {
		first, second, two := strings.Cut(c.name, " ")
		require.Contains(t, completions(ctx, []string{first}), first)
		if two {
			require.Contains(t, completions(ctx, []string{first, second}), second)
		}
	}
}

// TestCompletionScripts: each script is valid for its shell (those that
// are installed here), and bash, given the script and the real binary,
// completes a command and a flag.
func TestCompletionScripts(t *testing.T) {
	ctx := context.Background()
	for shell, check := range map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "--no-execute"}} {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(ctx, []string{"completion", shell}, &out, &errOut), errOut.String())
		if _, err := exec.LookPath(check[0]); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (.ci/run installs it)", check[0])
			}
			t.Logf("%s not installed: its script is not checked", check[0])
			continue
		}
		path := filepath.Join(t.TempDir(), "completion."+shell)
		require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
		b, err := exec.Command(check[0], append(check[1:], path)...).CombinedOutput()
		require.NoError(t, err, "%s: %s", shell, b)
	}
	var unknown bytes.Buffer
	require.Equal(t, exitUsage, run(ctx, []string{"completion", "tcsh"}, &unknown, &unknown))

	if testing.Short() {
		return
	}
	bin := hostBinaries(t)
	var script, errOut bytes.Buffer
	require.Equal(t, exitOK, run(ctx, []string{"completion", "bash"}, &script, &errOut))
	complete := func(line ...string) string {
		src := script.String() + "\nCOMP_WORDS=(aof2-host " + strings.Join(line, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(line)) +
			"\n_aof2_host\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		cmd := exec.Command("bash", "-c", src)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", b)
		return strings.TrimSpace(string(b))
	}
	require.Equal(t, "scrub", complete("scr"))
	require.Equal(t, "-skip-tier2", complete("manifest", "verify", "-skip-t"))
}
