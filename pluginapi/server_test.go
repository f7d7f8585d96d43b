package pluginapi

import (
	"bytes"
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

// Settings may carry credentials: the adapter never logs or echoes values.
func TestConfigureNeverLogsSettingValues(t *testing.T) {
	var logs bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	c := serveRaw(t, NewServer(memBackend(), logger))
	_, err := c.Configure(t.Context(), ConfigureRequest{Config: map[string]string{"secret_access_key": "hunter2-very-secret"}})
	require.NoError(t, err)
	_, err = c.Configure(t.Context(), ConfigureRequest{Config: map[string]string{"secret_access_key": "hunter2-very-secret"}, ChunkSize: 7})
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.NotContains(t, err.Error(), "hunter2")
	require.NotContains(t, logs.String(), "hunter2")
	require.Contains(t, logs.String(), "configured")
}

func TestStagingDirConfinesLocalPaths(t *testing.T) {
	staging := t.TempDir()
	c := serveRaw(t, NewServer(fileCaps{memBackend()}, nil))
	_, err := c.Configure(t.Context(), ConfigureRequest{StagingDir: staging})
	require.NoError(t, err)
	_, err = c.GetFile(t.Context(), GetRequest{Key: "k"}, t.TempDir()+"/elsewhere")
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.ErrorContains(t, err, "outside the staging directory")
	_, err = c.PutFile(t.Context(), PutRequest{Key: "k", Size: 1}, staging+"/../x")
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = c.Configure(t.Context(), ConfigureRequest{StagingDir: "relative"})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// fileCaps advertises PutFile/GetFile so the adapter's path checks run.
type fileCaps struct{ *mem }

func (f fileCaps) Info(ctx context.Context) (Info, error) {
	i, err := f.mem.Info(ctx)
	i.Capabilities.PutFile, i.Capabilities.GetFile = true, true
	return i, err
}
